package io.keywarden.daemon.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.CgroupInfo;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.testkit.ManualClock;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.Workload;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AuditTrailTest {
    @TempDir
    Path dir;

    @Test
    void everyOpenIsOnRecordAndAKeyReadIsNeverHiddenBehindAnotherFile() throws Exception {
        ManualClock clock = new ManualClock(Instant.parse("2026-11-30T10:00:00Z"));
        Policy policy = PolicyLoader.parse("""
                keys: {openai: {}}
                workloads:
                  - {name: alice, spiffeId: "spiffe://t/alice", selectors: ["unix:uid:1001"], keys: [openai]}
                """, "p.yaml");
        Workload alice = policy.workloads().get(0);
        ProcessInfo p = new ProcessInfo(4242, 77, 1001, 1001, 0, Optional.of("/usr/bin/cat"), Optional.empty(),
                CgroupInfo.NONE, Optional::empty);
        Attestation.Identified who = new Attestation.Identified(p, alice, alice.spiffeId());
        IssuedKey key = new IssuedKey("sk-test-0123456789".getBytes(StandardCharsets.US_ASCII), clock.instant().plusSeconds(300),
                "lease-1");
        Path f = dir.resolve("audit.jsonl");
        try (Ledger ledger = Ledger.open(f, "n", clock, Long.MAX_VALUE, Duration.ZERO, null)) {
            AuditTrail audit = new AuditTrail(ledger, new Metrics(), new Readiness(), clock);
            audit.granted(who, "openai", "expires_at", key);
            audit.granted(who, "openai", "api_key", key);
            for (int i = 0; i < 5; i++) {
                audit.granted(who, "openai", "api_key", key);
            }
            List<String> records = Files.readAllLines(f);
            assertEquals(2, records.size(), "the first read of each file at once: " + records);
            assertTrue(records.get(1).contains("opened api_key"), records.get(1));
            clock.advance(Duration.ofSeconds(11));
            audit.flushDenials();
            records = Files.readAllLines(f);
            assertEquals(3, records.size(), records.toString());
            assertTrue(records.get(2).contains("\"repeats\":5") && records.get(2).contains("opened api_key again"),
                    records.get(2));
            assertTrue(records.stream().noneMatch(l -> l.contains("sk-test")), "no key in the ledger");
        }
    }
}
