package io.keywarden.daemon.audit;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code keywarden audit report}: per workload, over a period, what an auditor asks each month —
 * keys issued (first issues and refreshes), accesses and denials (repeats counted), guard
 * breaches, operator actions. Built from a ledger that verified (or, asked, one that does not,
 * said so on top).
 */
public final class AuditReport {
    /** One workload's counts. */
    static final class Row {
        long issued;
        long refreshed;
        long revoked;
        long accesses;
        long denials;
        long breaches;
        long operator;
    }

    private AuditReport() {
    }

    static Map<String, Row> count(List<Map<String, Object>> records, Instant since, Instant until) {
        AuditQuery.fillWorkloads(records);
        Map<String, Row> rows = new TreeMap<>();
        for (Map<String, Object> r : records) {
            if (!(r.get("ts") instanceof String ts) || !ts.matches("\\d{4}-.*")) {
                continue;
            }
            Instant t = Instant.parse(ts);
            if ((since != null && t.isBefore(since)) || (until != null && !t.isBefore(until))) {
                continue;
            }
            String event = String.valueOf(r.get("event"));
            String w = r.get("workload") == null ? "(unidentified)" : r.get("workload").toString();
            long n = r.get("repeats") instanceof Number k ? k.longValue() : 1;
            switch (event) {
                case "key.issued" -> rows.computeIfAbsent(w, x -> new Row()).issued++;
                case "key.refreshed" -> rows.computeIfAbsent(w, x -> new Row()).refreshed++;
                case "key.revoked" -> rows.computeIfAbsent(w, x -> new Row()).revoked++;
                case "access.granted" -> rows.computeIfAbsent(w, x -> new Row()).accesses += n;
                case "access.denied" -> rows.computeIfAbsent(w, x -> new Row()).denials += n;
                case "guard.breach" -> rows.computeIfAbsent(w, x -> new Row()).breaches++;
                default -> {
                    if (event.startsWith("admin.") || event.startsWith("fleet.")) {
                        rows.computeIfAbsent(w, x -> new Row()).operator++;
                    }
                }
            }
        }
        return rows;
    }

    /** Prints the report of {@code file} between {@code since} and {@code until} (either may be null). */
    public static void print(Path file, Instant since, Instant until, boolean csv, boolean verify, PrintWriter out)
            throws IOException {
        LedgerVerifier.Result v = AuditQuery.verified(file, verify);
        Map<String, Row> rows = count(AuditQuery.readTolerant(file), since, until);
        String[] heads = {"WORKLOAD", "KEYS ISSUED", "REFRESHED", "REVOKED", "ACCESSES", "DENIALS", "BREACHES",
                "OPERATOR ACTIONS"};
        if (csv) {
            out.println("workload,keys_issued,refreshed,revoked,accesses,denials,breaches,operator_actions");
            rows.forEach((w, r) -> out.println(csvCell(w) + "," + r.issued + "," + r.refreshed + "," + r.revoked + ","
                    + r.accesses + "," + r.denials + "," + r.breaches + "," + r.operator));
            return;
        }
        out.println("keywarden audit report: " + file + ", " + (since == null ? "from the start" : "from " + since)
                + (until == null ? " to the end" : " until " + until) + "; " + (v.ok() ? "the ledger verifies ("
                + v.describe() + ")" : "THE LEDGER DOES NOT VERIFY: " + v.describe()));
        int w0 = Math.max(heads[0].length(), rows.keySet().stream().mapToInt(String::length).max().orElse(0));
        StringBuilder h = new StringBuilder(pad(heads[0], w0));
        for (int i = 1; i < heads.length; i++) {
            h.append("  ").append(heads[i]);
        }
        out.println(h);
        rows.forEach((w, r) -> {
            long[] v2 = {r.issued, r.refreshed, r.revoked, r.accesses, r.denials, r.breaches, r.operator};
            StringBuilder b = new StringBuilder(pad(w, w0));
            for (int i = 0; i < v2.length; i++) {
                String c = Long.toString(v2[i]);
                b.append("  ").append(" ".repeat(Math.max(0, heads[i + 1].length() - c.length()))).append(c);
            }
            out.println(b);
        });
        if (rows.isEmpty()) {
            out.println("(no records in this period)");
        }
    }

    private static String pad(String s, int w) {
        return s + " ".repeat(Math.max(0, w - s.length()));
    }

    private static String csvCell(String s) {
        return s.matches("[A-Za-z0-9._()/:-]*") ? s : "\"" + s.replace("\"", "\"\"") + "\"";
    }
}
