package io.keywarden.daemon.audit;

import com.fasterxml.jackson.core.type.TypeReference;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The records of many nodes' ledgers in one stream, in any order (what a log pipeline such as
 * Loki or Elastic returns from {@code audit.stdout}): each node's chain is rebuilt by its
 * {@code node} and {@code seq} and verified on its own (hashes, links, seq without gaps). A stream
 * starts and ends where the pipeline kept records, so each node's first record may come after its
 * genesis (said, not an error); a record missing inside a node's range, a changed or forged record,
 * or two different records with one seq, is.
 */
public final class MergedLedger {
    private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() {
    };
    /** A line longer than this is not a ledger record (log shippers must pass lines this long whole). */
    public static final int MAX_LINE_BYTES = 1 << 20;
    static final int MAX_LINE = MAX_LINE_BYTES;

    private MergedLedger() {
    }

    /** One node's chain in the stream. */
    public record NodeResult(String node, long records, long firstSeq, long lastSeq, List<String> problems) {
        public boolean ok() {
            return problems.isEmpty();
        }

        public String describe() {
            String range = records == 0 ? "no records" : records + " records, seq " + firstSeq + ".." + lastSeq
                    + (firstSeq > 1 ? " (the stream starts after its genesis)" : "");
            return "node " + node + ": " + (ok() ? "OK: " + range : "BROKEN: " + range + "; " + String.join("; ", problems));
        }
    }

    /** Every node's result, by node name; lines that are not records are reported under node "?". */
    public static Map<String, NodeResult> verify(Path stream) throws IOException {
        Map<String, TreeMap<Long, List<Map<String, Object>>>> byNode = new TreeMap<>();
        List<String> unreadable = new ArrayList<>();
        try (BufferedReader in = Files.newBufferedReader(stream, StandardCharsets.UTF_8)) {
            long lineNo = 0;
            for (String line; (line = in.readLine()) != null; ) {
                lineNo++;
                if (line.isBlank()) {
                    continue;
                }
                if (line.length() > MAX_LINE) {
                    unreadable.add("line " + lineNo + " is too long to be a record");
                    continue;
                }
                Map<String, Object> r;
                try {
                    r = Canonical.mapper().readValue(line.strip(), MAP);
                } catch (IOException e) {
                    unreadable.add("line " + lineNo + " is not a JSON object");
                    continue;
                }
                if (!(r.get("node") instanceof String node) || !(r.get("seq") instanceof Number seq)) {
                    unreadable.add("line " + lineNo + " has no node or seq");
                    continue;
                }
                byNode.computeIfAbsent(node, k -> new TreeMap<>()).computeIfAbsent(seq.longValue(), k -> new ArrayList<>(1))
                        .add(r);
            }
        }
        Map<String, NodeResult> out = new TreeMap<>();
        byNode.forEach((node, records) -> out.put(node, verifyNode(node, records)));
        if (!unreadable.isEmpty()) {
            out.put("?", new NodeResult("?", 0, 0, 0, unreadable.size() > 10 ? List.of(unreadable.size()
                    + " lines are not records, the first: " + unreadable.get(0)) : unreadable));
        }
        return out;
    }

    private static NodeResult verifyNode(String node, TreeMap<Long, List<Map<String, Object>>> records) {
        List<String> problems = new ArrayList<>();
        long first = records.firstKey();
        long last = records.lastKey();
        Long expected = null;
        String prevHash = null;
        long count = 0;
        for (Map.Entry<Long, List<Map<String, Object>>> e : records.entrySet()) {
            long seq = e.getKey();
            List<Map<String, Object>> same = e.getValue();
            Map<String, Object> r = same.get(0);
            // The same record delivered twice (pipelines retry) is one record; two different ones are not.
            for (Map<String, Object> other : same.subList(1, same.size())) {
                if (!String.valueOf(other.get("hash")).equals(String.valueOf(r.get("hash")))) {
                    problems.add("two different records with seq " + seq);
                }
            }
            count++;
            if (!(r.get("hash") instanceof String h) || !h.equals(Canonical.hash(r))) {
                problems.add("record " + seq + ": hash does not match its content (edited or forged)");
                prevHash = null;
                expected = seq + 1;
                continue;
            }
            if (expected != null && seq != expected) {
                problems.add(seq - expected == 1 ? "record " + expected + " is missing"
                        : "records " + expected + ".." + (seq - 1) + " are missing");
                prevHash = null;
            }
            if (prevHash != null && !prevHash.equals(r.get("prev"))) {
                problems.add("record " + seq + ": prev does not match record " + (seq - 1) + "'s hash");
            }
            if (seq == 1 && !Canonical.GENESIS.equals(r.get("prev"))) {
                problems.add("record 1 does not start from the genesis");
            }
            prevHash = h;
            expected = seq + 1;
        }
        return new NodeResult(node, count, first, last, problems);
    }

    /** Every record of the stream, each node's in seq order, all in time order (for {@code audit show}). */
    public static List<Map<String, Object>> records(Path stream) throws IOException {
        List<Map<String, Object>> all = new ArrayList<>();
        try (BufferedReader in = Files.newBufferedReader(stream, StandardCharsets.UTF_8)) {
            for (String line; (line = in.readLine()) != null; ) {
                if (line.isBlank() || line.length() > MAX_LINE) {
                    continue;
                }
                try {
                    all.add(Canonical.mapper().readValue(line.strip(), MAP));
                } catch (IOException e) {
                    // verified before: not shown
                }
            }
        }
        all.sort(Comparator.comparing((Map<String, Object> r) -> String.valueOf(r.get("ts")))
                .thenComparing(r -> String.valueOf(r.get("node")))
                .thenComparingLong(r -> r.get("seq") instanceof Number n ? n.longValue() : 0));
        return all;
    }
}
