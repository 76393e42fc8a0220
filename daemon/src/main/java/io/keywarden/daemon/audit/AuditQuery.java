package io.keywarden.daemon.audit;

import io.keywarden.policy.Durations;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** {@code keywarden audit show}: filters, then an auditor's table or JSON lines. */
public record AuditQuery(String spiffeId, String key, String event, Instant since, Instant until, String workload,
                         String fingerprint, Long pid) {
    static final Set<String> EVENTS = java.util.Arrays.stream(LedgerEvent.values()).map(LedgerEvent::wire)
            .collect(java.util.stream.Collectors.toUnmodifiableSet());

    public static AuditQuery of(String spiffeId, String key, String event, String since, Clock clock) {
        return of(spiffeId, key, event, since, null, null, null, null, clock);
    }

    public static AuditQuery of(String spiffeId, String key, String event, String since, String until, String workload,
                                String fingerprint, Long pid, Clock clock) {
        if (event != null && !EVENTS.contains(event)) {
            throw new IllegalArgumentException("--event: '" + event + "' is not an event (" + String.join(", ",
                    EVENTS.stream().sorted().toList()) + ")");
        }
        return new AuditQuery(spiffeId, key, event, time("--since", since, clock), time("--until", until, clock), workload,
                fingerprint, pid);
    }

    /** An RFC 3339 time, or a duration back from now. */
    private static Instant time(String option, String text, Clock clock) {
        if (text == null) {
            return null;
        }
        try {
            return Instant.parse(text);
        } catch (DateTimeParseException e) {
            try {
                return clock.instant().minus(Durations.parse(text));
            } catch (IllegalArgumentException d) {
                throw new IllegalArgumentException(option + ": '" + text + "' is neither an RFC 3339 time nor a duration");
            }
        }
    }

    boolean matches(Map<String, Object> r) {
        Instant ts = since == null && until == null ? null : Instant.parse((String) r.get("ts"));
        return (spiffeId == null || spiffeId.equals(r.get("spiffe_id")))
                && (key == null || key.equals(r.get("key")))
                && (event == null || event.equals(r.get("event")))
                && (workload == null || workload.equals(r.get("workload")))
                && (fingerprint == null || fingerprint.equals(r.get("fingerprint")))
                && (pid == null || (r.get("pid") instanceof Number n && n.longValue() == pid))
                && (since == null || !ts.isBefore(since))
                && (until == null || ts.isBefore(until));
    }

    /**
     * Prints the matching records, after the whole ledger verified: an auditor is never shown the
     * content of a ledger that was edited (or cut short, against its head file) unless asked
     * ({@code verify false}: every record shown, the break marked where it is).
     */
    public void print(Path file, boolean json, PrintWriter out) throws IOException {
        print(file, json, true, out);
    }

    public void print(Path file, boolean json, boolean verify, PrintWriter out) throws IOException {
        if (verify) {
            // One pass: the chain is checked and the fields the filters need read together; only the
            // records shown are parsed whole.
            record Line(LedgerVerifier.Fields fields, byte[] segment, int start, int end) {
            }
            List<Line> lines = new java.util.ArrayList<>();
            Map<String, String> workloadOf = new java.util.HashMap<>();
            LedgerVerifier.Result v = verified(file, true, (f, buf, start, end) -> {
                if (f.workload != null && f.spiffeId != null) {
                    workloadOf.put(f.spiffeId, f.workload);
                }
                lines.add(new Line(f, buf, start, end));   // the segment's bytes, not a copy
            });
            List<Map<String, Object>> rows = new java.util.ArrayList<>();
            for (Line l : lines) {
                LedgerVerifier.Fields f = l.fields();
                String w = f.workload != null ? f.workload : f.spiffeId == null ? null : workloadOf.get(f.spiffeId);
                if (mayMatch(f, w)) {
                    Map<String, Object> r = FlatRecord.readAll(l.segment(), l.start(), l.end());
                    if (r == null) {   // not as the ledger writes records: the general parser reads it
                        r = Canonical.mapper().readValue(l.segment(), l.start(), l.end() - l.start(),
                                new com.fasterxml.jackson.core.type.TypeReference<java.util.LinkedHashMap<String, Object>>() { });
                    }
                    if (w != null) {
                        r.putIfAbsent("workload", w);
                    }
                    rows.add(r);
                }
            }
            printRows(rows, json, out, false, null);
            return;
        }
        LedgerVerifier.Result v = verified(file, false);
        printRows(readTolerant(file), json, out, false, v.ok() ? null : v);
    }

    /** The filters a record's light fields settle (the time ones are checked again on the whole record). */
    private boolean mayMatch(LedgerVerifier.Fields f, String w) {
        return (spiffeId == null || spiffeId.equals(f.spiffeId))
                && (key == null || key.equals(f.key))
                && (event == null || event.equals(f.event))
                && (workload == null || workload.equals(w))
                && (fingerprint == null || fingerprint.equals(f.fingerprint))
                && (pid == null || f.pid == pid)
                && (since == null || f.ts == null || f.ts.compareTo(since.toString().substring(0, 10)) >= 0);
    }

    /** The ledger's verification; with {@code required}, a ledger that does not verify is refused. */
    static LedgerVerifier.Result verified(Path file, boolean required) throws IOException {
        return verified(file, required, null);
    }

    static LedgerVerifier.Result verified(Path file, boolean required, LedgerVerifier.Visitor visitor)
            throws IOException {
        LedgerVerifier.Head head = null;
        java.nio.file.Path headFile = LedgerFiles.headFileOf(file);
        if (java.nio.file.Files.exists(headFile)) {
            try {
                head = LedgerVerifier.Head.parse(java.nio.file.Files.readString(headFile));
            } catch (IllegalArgumentException e) {
                if (required) {
                    throw new IllegalArgumentException(headFile + ": " + e.getMessage(), e);
                }
            }
        }
        LedgerVerifier.Result v = LedgerVerifier.verify(file, head, visitor);
        if (!v.ok() && required) {
            throw new IllegalArgumentException(file + " does not verify (" + v.describe() + "); refusing to show it"
                    + " (--no-verify shows it with the break marked)");
        }
        return v;
    }

    /** Every record of every segment; a line that is not JSON becomes a record saying so (for --no-verify). */
    static List<Map<String, Object>> readTolerant(Path file) throws IOException {
        List<Map<String, Object>> out = new java.util.ArrayList<>();
        for (Path seg : LedgerFiles.segments(file)) {
            int n = 0;
            for (String line : java.nio.file.Files.readAllLines(seg)) {
                n++;
                if (line.isBlank()) {
                    continue;
                }
                try {
                    out.add(Canonical.mapper().readValue(line, new com.fasterxml.jackson.core.type.TypeReference<
                            java.util.LinkedHashMap<String, Object>>() { }));
                } catch (com.fasterxml.jackson.core.JacksonException e) {
                    Map<String, Object> bad = new java.util.LinkedHashMap<>();
                    bad.put("seq", "?");
                    bad.put("ts", "?");
                    bad.put("event", "(unparsable)");
                    bad.put("reason", seg.getFileName() + " line " + n + " is not a JSON record");
                    out.add(bad);
                }
            }
        }
        return out;
    }

    /**
     * Prints the matching records of a merged stream of several nodes' records, after every node's
     * chain in it verified ({@link MergedLedger}); in time order, with each record's node.
     */
    public void printMerged(Path stream, boolean json, PrintWriter out) throws IOException {
        List<String> broken = new java.util.ArrayList<>();
        MergedLedger.verify(stream).values().forEach(n -> {
            if (!n.ok()) {
                broken.add(n.describe());
            }
        });
        if (!broken.isEmpty()) {
            throw new IllegalArgumentException(stream + " does not verify (" + String.join("; ", broken)
                    + "); refusing to show it");
        }
        printRows(MergedLedger.records(stream), json, out, true, null);
    }

    /** Fields shown in their own columns; every other field of a record is its DETAIL. */
    private static final List<String> COLUMNS = List.of("seq", "ts", "event", "workload", "key", "fingerprint",
            "provider_key_id", "spiffe_id");
    private static final Set<String> NOT_DETAIL = Set.of("seq", "ts", "event", "workload", "key", "fingerprint",
            "provider_key_id", "spiffe_id", "hash", "prev", "node");

    /**
     * Records that lack a workload (access records of older builds, an operator's by SPIFFE ID) get
     * the one the ledger itself ties to their SPIFFE ID.
     */
    static void fillWorkloads(List<Map<String, Object>> all) {
        Map<Object, Object> bySpiffe = new java.util.HashMap<>();
        for (Map<String, Object> r : all) {
            if (r.get("workload") != null && r.get("spiffe_id") != null) {
                bySpiffe.put(r.get("spiffe_id"), r.get("workload"));
            }
        }
        for (Map<String, Object> r : all) {
            if (r.get("workload") == null && r.get("spiffe_id") != null && bySpiffe.containsKey(r.get("spiffe_id"))) {
                r.put("workload", bySpiffe.get(r.get("spiffe_id")));
            }
        }
    }

    /** A record's other fields as {@code name=value}, in the order written (reason last). */
    static String detail(Map<String, Object> r) {
        StringBuilder b = new StringBuilder();
        r.forEach((k, v) -> {
            if (!NOT_DETAIL.contains(k) && v != null && !k.equals("reason")) {
                b.append(b.length() > 0 ? " " : "").append(k).append('=').append(v);
            }
        });
        Object reason = r.get("reason");
        if (reason != null) {
            b.append(b.length() > 0 ? " — " : "").append(reason);
        }
        return b.toString();
    }

    private void printRows(List<Map<String, Object>> all, boolean json, PrintWriter out, boolean withNode,
                           LedgerVerifier.Result broken) {
        all = all.stream().map(r -> (Map<String, Object>) new java.util.LinkedHashMap<>(r)).toList();
        fillWorkloads(all);
        List<Map<String, Object>> rows = all.stream().filter(this::matchesTolerant).toList();
        if (json) {
            if (broken != null) {
                out.println(Canonical.json(Map.of("event", "(ledger does not verify)", "reason", broken.describe())));
            }
            rows.forEach(r -> out.println(Canonical.json(r)));
            return;
        }
        List<String> heads = new java.util.ArrayList<>(withNode ? List.of("NODE") : List.of());
        heads.addAll(List.of("SEQ", "TIME", "EVENT", "WORKLOAD", "KEY", "FINGERPRINT", "PROVIDER KEY", "SPIFFE ID", "DETAIL"));
        List<List<String>> table = new java.util.ArrayList<>();
        for (Map<String, Object> r : rows) {
            List<String> cells = new java.util.ArrayList<>(withNode ? List.of(str(r.get("node"))) : List.of());
            for (String c : COLUMNS) {
                cells.add(str(r.get(c)));
            }
            cells.add(detail(r));
            table.add(cells);
        }
        int[] width = new int[heads.size()];
        for (int i = 0; i < width.length; i++) {
            width[i] = heads.get(i).length();
            for (List<String> row : table) {
                width[i] = Math.max(width[i], row.get(i).length());
            }
        }
        printRow(out, heads, width);
        for (int i = 0; i < table.size(); i++) {
            Map<String, Object> r = rows.get(i);
            if (broken != null && r.get("seq") instanceof Number n && n.longValue() == broken.brokenRecord()) {
                out.println("!!! the chain breaks here: " + broken.describe());
            }
            printRow(out, table.get(i), width);
        }
        if (broken != null && rows.stream().noneMatch(r -> r.get("seq") instanceof Number n
                && n.longValue() == broken.brokenRecord())) {
            out.println("!!! the ledger does not verify: " + broken.describe());
        }
    }

    private static void printRow(PrintWriter out, List<String> cells, int[] width) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < cells.size(); i++) {
            String c = cells.get(i);
            b.append(c);
            if (i < cells.size() - 1) {
                b.append(" ".repeat(width[i] - c.length() + 2));
            }
        }
        out.println(b.toString().stripTrailing());
    }

    /** As {@link #matches}, for records without a parsable time (shown only when no time bound is asked). */
    private boolean matchesTolerant(Map<String, Object> r) {
        if (!(r.get("ts") instanceof String ts) || ts.length() < 5 || ts.charAt(4) != '-'
                || !ts.substring(0, 4).chars().allMatch(Character::isDigit)) {
            return since == null && until == null && spiffeId == null && key == null && event == null && workload == null
                    && fingerprint == null && pid == null;
        }
        return matches(r);
    }

    static String str(Object o) {
        return o == null ? "-" : o.toString();
    }
}
