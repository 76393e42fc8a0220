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
public record AuditQuery(String spiffeId, String key, String event, Instant since) {
    static final Set<String> EVENTS = Set.of("daemon.started", "daemon.stopped", "policy.loaded", "policy.rejected",
            "key.issued", "key.refreshed", "key.revoked", "key.expired", "issue.failed", "access.granted", "access.denied");

    public static AuditQuery of(String spiffeId, String key, String event, String since, Clock clock) {
        if (event != null && !EVENTS.contains(event)) {
            throw new IllegalArgumentException("--event: '" + event + "' is not an event (" + String.join(", ",
                    EVENTS.stream().sorted().toList()) + ")");
        }
        Instant from = null;
        if (since != null) {
            try {
                from = Instant.parse(since);
            } catch (DateTimeParseException e) {
                try {
                    from = clock.instant().minus(Durations.parse(since));
                } catch (IllegalArgumentException d) {
                    throw new IllegalArgumentException("--since: '" + since + "' is neither an RFC 3339 time nor a duration");
                }
            }
        }
        return new AuditQuery(spiffeId, key, event, from);
    }

    boolean matches(Map<String, Object> r) {
        return (spiffeId == null || spiffeId.equals(r.get("spiffe_id")))
                && (key == null || key.equals(r.get("key")))
                && (event == null || event.equals(r.get("event")))
                && (since == null || !Instant.parse((String) r.get("ts")).isBefore(since));
    }

    public void print(Path file, boolean json, PrintWriter out) throws IOException {
        List<Map<String, Object>> rows = Ledger.readAll(file).stream().filter(this::matches).toList();
        if (json) {
            rows.forEach(r -> out.println(Canonical.json(r)));
            return;
        }
        out.printf("%-6s %-24s %-15s %-10s %-8s %-20s %-45s %s%n", "SEQ", "TIME", "EVENT", "WORKLOAD", "KEY", "FINGERPRINT",
                "SPIFFE ID", "DETAIL");
        for (Map<String, Object> r : rows) {
            String detail = r.containsKey("pid") ? "pid " + r.get("pid") + " uid " + r.get("uid") + " " + r.getOrDefault("exe", "")
                    + (r.get("reason") != null ? " — " + r.get("reason") : "")
                    : (r.get("lease_id") != null ? "lease " + r.get("lease_id") + " " : "") + (r.get("reason") == null ? ""
                    : r.get("reason"));
            out.printf("%-6s %-24s %-15s %-10s %-8s %-20s %-45s %s%n", r.get("seq"), r.get("ts"), r.get("event"),
                    str(r.get("workload")), str(r.get("key")), str(r.get("fingerprint")), str(r.get("spiffe_id")), detail.trim());
        }
    }

    private static String str(Object o) {
        return o == null ? "-" : o.toString();
    }
}
