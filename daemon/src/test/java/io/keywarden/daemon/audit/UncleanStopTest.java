package io.keywarden.daemon.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class UncleanStopTest {
    static final Instant T0 = Instant.parse("2026-12-04T00:00:00Z");
    final Clock clock = Clock.fixed(T0, ZoneOffset.UTC);

    static Map<String, Object> lease(String id, String expires) {
        return Map.of("workload", "alice", "key", "openai", "lease_id", id, "fingerprint", "sha256:0123456789abcdef",
                "expires_at", expires);
    }

    @Test
    void aRunThatEndsWithDaemonStoppedLeftNothing(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("audit.jsonl");
        try (Ledger l = Ledger.open(f, "n", clock, Long.MAX_VALUE, Duration.ZERO, null)) {
            assertTrue(UncleanStop.of(l, T0).isEmpty(), "a new ledger");
            l.append("key.issued", lease("lease/1", "2026-12-04T01:00:00Z"));
            l.append("daemon.stopped", Map.of("reason", "shutdown"));
        }
        try (Ledger l = Ledger.open(f, "n", clock, Long.MAX_VALUE, Duration.ZERO, null)) {
            assertTrue(UncleanStop.of(l, T0).isEmpty());
        }
    }

    @Test
    void aKilledRunLeavesItsLastRecordAndTheLeasesStillAlive(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("audit.jsonl");
        Ledger killed = Ledger.open(f, "n", clock, Long.MAX_VALUE, Duration.ZERO, null);
        killed.append("daemon.started", Map.of("reason", "run"));
        killed.append("key.issued", lease("lease/1", "2026-12-04T01:00:00Z"));
        killed.append("key.refreshed", lease("lease/2", "2026-12-04T02:00:00Z"));
        killed.append("key.revoked", lease("lease/1", "2026-12-04T01:00:00Z"));
        killed.append("key.issued", lease("lease/3", "2026-12-03T23:00:00Z"));
        killed.append("access.granted", Map.of("pid", 42, "key", "openai"));
        // No daemon.stopped: the process died (closing the file writes nothing more), and a torn line follows.
        killed.close();
        Files.writeString(f, Files.readString(f) + "{\"seq\":7,\"ev");
        try (Ledger l = Ledger.open(f, "n", clock, Long.MAX_VALUE, Duration.ZERO, null)) {
            UncleanStop.Finding u = UncleanStop.of(l, T0).orElseThrow();
            assertEquals("access.granted", u.last().get("event"));
            assertTrue(u.torn());
            assertEquals(1, u.leftAlive().size(), "lease/1 revoked, lease/3 expired already: " + u.leftAlive());
            assertEquals("lease/2", u.leftAlive().get(0).get("lease_id"));
            l.append("key.orphaned", lease("lease/2", "2026-12-04T02:00:00Z"));
        }
        try (Ledger l = Ledger.open(f, "n", clock, Long.MAX_VALUE, Duration.ZERO, null)) {
            UncleanStop.Finding again = UncleanStop.of(l, T0).orElseThrow();
            assertFalse(again.torn());
            assertTrue(again.leftAlive().isEmpty(), "a lease reported orphaned once is not reported again");
        }
    }
}
