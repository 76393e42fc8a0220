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
    static final Set<String> EVENTS = Set.of("daemon.started", "daemon.stopped", "policy.loaded", "policy.rejected",
            "key.issued", "key.refreshed", "key.revoked", "key.expired", "issue.failed", "access.granted", "access.denied",
            "admin.revoke", "admin.block", "admin.unblock", "ledger.pruned", "guard.breach", "guard.unblock", "usage",
            "csi.published", "csi.unpublished", "daemon.handover", "handover.refused", "fleet.block.applied",
            "fleet.unblock.applied");

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
        Instant ts = Instant.parse((String) r.get("ts"));
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
     * content of a ledger that was edited (or cut short, against its head file).
     */
    public void print(Path file, boolean json, PrintWriter out) throws IOException {
        LedgerVerifier.Head head = null;
        java.nio.file.Path headFile = Ledger.headFileOf(file);
        if (java.nio.file.Files.exists(headFile)) {
            try {
                head = LedgerVerifier.Head.parse(java.nio.file.Files.readString(headFile));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException(headFile + ": " + e.getMessage(), e);
            }
        }
        LedgerVerifier.Result v = LedgerVerifier.verify(file, head);
        if (!v.ok()) {
            throw new IllegalArgumentException(file + " does not verify (" + v.describe() + "); refusing to show it");
        }
        printRows(Ledger.readAll(file), json, out, false);
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
        printRows(MergedLedger.records(stream), json, out, true);
    }

    private void printRows(List<Map<String, Object>> all, boolean json, PrintWriter out, boolean withNode) {
        List<Map<String, Object>> rows = all.stream().filter(this::matches).toList();
        if (json) {
            rows.forEach(r -> out.println(Canonical.json(r)));
            return;
        }
        if (withNode) {
            out.printf("%-12s ", "NODE");
        }
        out.printf("%-6s %-24s %-15s %-10s %-8s %-20s %-20s %-45s %s%n", "SEQ", "TIME", "EVENT", "WORKLOAD", "KEY",
                "FINGERPRINT", "PROVIDER KEY", "SPIFFE ID", "DETAIL");
        for (Map<String, Object> r : rows) {
            String detail = r.containsKey("pid") ? "pid " + r.get("pid") + " uid " + r.get("uid") + " " + r.getOrDefault("exe", "")
                    + (r.get("reason") != null ? " — " + r.get("reason") : "")
                    : (r.get("lease_id") != null ? "lease " + r.get("lease_id") + " " : "") + (r.get("reason") == null ? ""
                    : r.get("reason"));
            if (withNode) {
                out.printf("%-12s ", str(r.get("node")));
            }
            out.printf("%-6s %-24s %-15s %-10s %-8s %-20s %-20s %-45s %s%n", r.get("seq"), r.get("ts"), r.get("event"),
                    str(r.get("workload")), str(r.get("key")), str(r.get("fingerprint")), str(r.get("provider_key_id")),
                    str(r.get("spiffe_id")), detail.trim());
        }
    }

    private static String str(Object o) {
        return o == null ? "-" : o.toString();
    }
}
