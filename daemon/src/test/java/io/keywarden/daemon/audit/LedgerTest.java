package io.keywarden.daemon.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.testkit.ManualClock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LedgerTest {
    @TempDir
    Path dir;
    final ManualClock clock = new ManualClock(Instant.parse("2026-11-22T10:00:00Z"));

    Path write(int n, long maxBytes) throws Exception {
        Path f = dir.resolve("audit.jsonl");
        try (Ledger l = Ledger.open(f, "node-a", clock, maxBytes, Duration.ZERO, null)) {
            for (int i = 1; i <= n; i++) {
                clock.advance(Duration.ofSeconds(1));
                l.append(i % 2 == 0 ? "access.granted" : "key.issued",
                        Map.of("key", "openai", "workload", "w" + i, "fingerprint", "sha256:" + "0".repeat(15) + i % 10));
            }
        }
        return f;
    }

    List<String> lines(Path f) throws Exception {
        return new ArrayList<>(Files.readAllLines(f));
    }

    @Test
    void recordsCutOffTheEndAreTruncationNotOk() throws Exception {
        Path f = write(5, Long.MAX_VALUE);
        LedgerVerifier.Head head = LedgerVerifier.Head.parse(Files.readString(Ledger.headFileOf(f)));
        assertEquals(5, head.seq(), "the head file names the last record");
        assertTrue(LedgerVerifier.verify(f, head).ok());
        List<String> l = lines(f);
        Files.write(f, l.subList(0, 3), StandardCharsets.UTF_8);
        assertTrue(LedgerVerifier.verify(f).ok(), "the chain alone cannot tell");
        LedgerVerifier.Result r = LedgerVerifier.verify(f, head);
        assertTrue(!r.ok() && r.describe().contains("TRUNCATED after record 3"), r.describe());
        // The same number of records with another end (rewritten and re-chained) does not match the head either.
        LedgerVerifier.Result other = LedgerVerifier.verify(f, new LedgerVerifier.Head(3, "ab".repeat(32)));
        assertTrue(!other.ok() && other.describe().contains("the end of the ledger was rewritten"), other.describe());
    }

    @Test
    void aRealLedgerVerifies() throws Exception {
        Path f = write(5, Long.MAX_VALUE);
        assertTrue(LedgerVerifier.verify(f).describe().startsWith("OK: 5 records; head 5:"), LedgerVerifier.verify(f).describe());
        List<String> l = lines(f);
        assertTrue(l.get(0).contains("\"prev\":\"" + "0".repeat(64) + "\""), l.get(0));
        assertTrue(l.get(0).contains("\"seq\":1") && l.get(0).contains("\"ts\":\"2026-11-22T10:00:01Z\"")
                || l.get(0).contains("\"ts\":\"2026-11-22T10:00:01.000Z\""), l.get(0));
    }

    /** Over 500 KB a segment is read in parts, one per core: a break is found, at its line, wherever the parts meet. */
    @Test
    void aLedgerReadInPartsFindsABreakOnEitherSideOfWherePartsMeet() throws Exception {
        Path f = write(6000, Long.MAX_VALUE);
        byte[] bytes = Files.readAllBytes(f);
        assertTrue(bytes.length > 500_000, "read in parts: " + bytes.length);
        assertTrue(LedgerVerifier.verify(f).describe().startsWith("OK: 6000 records; head 6000:"));
        List<String> l = lines(f);
        // The line under each place a part may start (halves, thirds, … eighths of the bytes), and its neighbours.
        java.util.Set<Integer> near = new java.util.TreeSet<>();
        for (int parts = 2; parts <= 8; parts++) {
            for (int k = 1; k < parts; k++) {
                int at = (int) ((long) bytes.length * k / parts);
                int line = 0;
                for (int i = 0; i < at; i++) {
                    line += bytes[i] == '\n' ? 1 : 0;
                }
                near.addAll(List.of(line - 1, line, line + 1));
            }
        }
        for (int i : near) {
            List<String> edited = new ArrayList<>(l);
            edited.set(i, edited.get(i).replace("\"key\":\"openai\"", "\"key\":\"openaj\""));
            Files.write(f, edited);
            assertEquals("BROKEN at record " + (i + 1) + " (line " + (i + 1) + "): hash does not match the record's"
                    + " content (edited or forged)", LedgerVerifier.verify(f).describe());
        }
        // A torn tail on a ledger read in parts, and a blank line where parts meet.
        Files.write(f, bytes);
        Files.write(f, "{\"seq\":6001".getBytes(StandardCharsets.UTF_8), java.nio.file.StandardOpenOption.APPEND);
        assertTrue(LedgerVerifier.verify(f).describe().startsWith("BROKEN at record 6001 (line 6001): truncated record"),
                LedgerVerifier.verify(f).describe());
        List<String> blank = new ArrayList<>(l);
        blank.add(3000, "");
        Files.write(f, blank);
        assertEquals("BROKEN at record 3001 (line 3001): not a JSON object", LedgerVerifier.verify(f).describe());
    }

    @Test
    void anEditedRecordIsFound() throws Exception {
        Path f = write(5, Long.MAX_VALUE);
        List<String> l = lines(f);
        l.set(2, l.get(2).replace("\"workload\":\"w3\"", "\"workload\":\"w9\""));
        Files.write(f, l);
        assertEquals("BROKEN at record 3 (line 3): hash does not match the record's content (edited or forged)",
                LedgerVerifier.verify(f).describe());
    }

    @Test
    void aDeletedRecordIsFound() throws Exception {
        Path f = write(5, Long.MAX_VALUE);
        List<String> l = lines(f);
        l.remove(2);
        Files.write(f, l);
        assertEquals("BROKEN at record 3 (line 3): seq is 4, expected 3 (a record was deleted, inserted or reordered)",
                LedgerVerifier.verify(f).describe());
    }

    @Test
    void reorderedRecordsAreFound() throws Exception {
        Path f = write(5, Long.MAX_VALUE);
        List<String> l = lines(f);
        String third = l.get(2);
        l.set(2, l.get(3));
        l.set(3, third);
        Files.write(f, l);
        assertTrue(LedgerVerifier.verify(f).describe().startsWith("BROKEN at record 3 (line 3): seq is 4, expected 3"));
    }

    @Test
    void aRenumberedDeletionIsFoundByTheChain() throws Exception {
        Path f = write(5, Long.MAX_VALUE);
        List<String> l = lines(f);
        l.remove(2);
        l.set(2, l.get(2).replace("\"seq\":4", "\"seq\":3"));
        Files.write(f, l);
        assertEquals("BROKEN at record 3 (line 3): prev does not match the previous record's hash"
                + " (a record before it was changed, deleted or reordered)", LedgerVerifier.verify(f).describe());
    }

    @Test
    void aForgedHashIsFoundAtTheNextRecord() throws Exception {
        Path f = write(5, Long.MAX_VALUE);
        List<String> l = lines(f);
        Map<String, Object> r = new java.util.TreeMap<>(Canonical.mapper().readValue(l.get(2), Map.class));
        r.put("workload", "attacker");
        r.put("hash", Canonical.hash(r));
        l.set(2, Canonical.json(r));
        Files.write(f, l);
        assertTrue(LedgerVerifier.verify(f).describe().startsWith("BROKEN at record 4 (line 4): prev does not match"));
    }

    @Test
    void aTruncatedLedgerIsReportedAndTheNextStartRepairsIt() throws Exception {
        Path f = write(5, Long.MAX_VALUE);
        byte[] all = Files.readAllBytes(f);
        Files.write(f, java.util.Arrays.copyOf(all, all.length - 20));
        assertEquals("BROKEN at record 5 (line 5): truncated record (partial last line, a crash mid-write)",
                LedgerVerifier.verify(f).describe());

        try (Ledger l = Ledger.open(f, "node-a", clock, Long.MAX_VALUE, Duration.ZERO, null)) {
            Map<String, Object> next = l.append("daemon.started", Map.of());
            assertEquals(5L, ((Number) next.get("seq")).longValue(), "continues after the last complete record");
        }
        assertTrue(LedgerVerifier.verify(f).describe().startsWith("OK: 5 records; head 5:"), LedgerVerifier.verify(f).describe());
        try (var s = Files.list(dir)) {
            List<String> names = s.map(p -> p.getFileName().toString()).sorted().toList();
            assertTrue(names.contains("audit.jsonl.1"), names.toString());
            assertTrue(names.stream().anyMatch(n -> n.startsWith("audit.jsonl.partial-")), "the torn bytes are kept: " + names);
        }
    }

    @Test
    void rotationKeepsTheChainAcrossFiles() throws Exception {
        Path f = write(40, 2000);
        try (var s = Files.list(dir)) {
            assertTrue(s.count() >= 3, "several segments");
        }
        assertTrue(LedgerVerifier.verify(f).describe().startsWith("OK: 40 records; head 40:"), LedgerVerifier.verify(f).describe());
        String lastOfFirst = lines(dir.resolve("audit.jsonl.1")).get(lines(dir.resolve("audit.jsonl.1")).size() - 1);
        String firstOfSecond = lines(dir.resolve("audit.jsonl.2")).get(0);
        String hash = (String) Canonical.mapper().readValue(lastOfFirst, Map.class).get("hash");
        assertEquals(hash, Canonical.mapper().readValue(firstOfSecond, Map.class).get("prev"));
        Files.delete(dir.resolve("audit.jsonl.2"));
        assertTrue(LedgerVerifier.verify(f).describe().startsWith("BROKEN"), "a missing segment breaks the chain");
    }

    @Test
    void reopeningContinuesTheChain() throws Exception {
        Path f = write(3, Long.MAX_VALUE);
        try (Ledger l = Ledger.open(f, "node-a", clock, Long.MAX_VALUE, Duration.ZERO, null)) {
            l.append("daemon.stopped", Map.of());
        }
        assertTrue(LedgerVerifier.verify(f).describe().startsWith("OK: 4 records; head 4:"), LedgerVerifier.verify(f).describe());
        assertTrue(new String(Files.readAllBytes(f), StandardCharsets.UTF_8).endsWith("\n"));
    }
}
