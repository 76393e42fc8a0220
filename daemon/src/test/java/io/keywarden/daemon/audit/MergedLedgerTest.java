package io.keywarden.daemon.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MergedLedgerTest {
    @TempDir
    Path dir;

    /** Three nodes' ledgers of 40 records each, every line of them, in a shuffled order. */
    List<String> merged() throws Exception {
        List<String> lines = new ArrayList<>();
        for (String node : new String[] {"a", "b", "c"}) {
            Path f = dir.resolve(node + ".jsonl");
            try (Ledger l = Ledger.open(f, node, Clock.systemUTC(), Long.MAX_VALUE, Duration.ZERO, null)) {
                for (int i = 0; i < 40; i++) {
                    l.append("access.granted", Map.of("key", "openai", "pid", i));
                }
            }
            lines.addAll(Files.readAllLines(f));
        }
        Collections.shuffle(lines, new Random(7));
        return lines;
    }

    Map<String, MergedLedger.NodeResult> verify(List<String> lines) throws Exception {
        Path f = dir.resolve("merged.jsonl");
        Files.write(f, lines);
        return MergedLedger.verify(f);
    }

    @Test
    void anyInterleavingOfSeveralNodesVerifiesPerNode() throws Exception {
        List<String> lines = merged();
        lines.add(lines.get(3)); // a pipeline's retry delivers one record twice
        Map<String, MergedLedger.NodeResult> r = verify(lines);
        assertEquals(List.of("a", "b", "c"), List.copyOf(r.keySet()));
        for (MergedLedger.NodeResult n : r.values()) {
            assertTrue(n.ok(), n.describe());
            assertEquals(40, n.records());
            assertEquals(1, n.firstSeq());
        }
    }

    @Test
    void aRecordCutFromOneNodeIsThatNodesGapAndAnEditIsFound() throws Exception {
        List<String> lines = merged();
        String cut = lines.stream().filter(l -> l.contains("\"node\":\"b\"") && l.contains("\"seq\":17,")).findFirst()
                .orElseThrow();
        lines.remove(cut);
        int i = lines.indexOf(lines.stream().filter(l -> l.contains("\"node\":\"c\"") && l.contains("\"seq\":5,"))
                .findFirst().orElseThrow());
        lines.set(i, lines.get(i).replace("\"key\":\"openai\"", "\"key\":\"other\""));
        Map<String, MergedLedger.NodeResult> r = verify(lines);
        assertTrue(r.get("a").ok(), r.get("a").describe());
        assertFalse(r.get("b").ok());
        assertTrue(r.get("b").describe().contains("record 17 is missing"), r.get("b").describe());
        assertFalse(r.get("c").ok());
        assertTrue(r.get("c").describe().contains("record 5: hash does not match"), r.get("c").describe());
    }

    @Test
    void aStreamThatStartsLateIsSaidAndLinesThatAreNoRecordsReported() throws Exception {
        List<String> lines = new ArrayList<>(merged().stream().filter(l -> !l.contains("\"seq\":1,")
                && !l.contains("\"seq\":2,")).toList());
        lines.add("not json");
        lines.add("{\"seq\":1}");
        Map<String, MergedLedger.NodeResult> r = verify(lines);
        assertTrue(r.get("a").ok(), r.get("a").describe());
        assertTrue(r.get("a").describe().contains("seq 3..40 (the stream starts after its genesis)"), r.get("a").describe());
        assertFalse(r.get("?").ok());
        assertEquals(2, r.get("?").problems().size(), r.get("?").describe());
    }
}
