package io.keywarden.tests.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.audit.LedgerException;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.FuseSession;
import io.keywarden.linux.LibC;
import io.keywarden.linux.Mounts;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.testkit.MemoryKeySource;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.TestKeyFs;
import io.keywarden.tests.support.TestKeys;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A full disk under the ledger: loud (metric, readiness), and no key is served unrecorded. */
class LedgerFailureIT {

    @Test
    void aFullDiskStopsServingKeysAndSaysSo() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-ledger-full-");
        Path disk = dir.resolve("disk");
        Path mnt = dir.resolve("mnt");
        Files.createDirectories(disk);
        Proc.run("chmod", "755", dir.toString());
        Mounts.mount("kw-test", disk, "tmpfs", LibC.MS_NOSUID | LibC.MS_NODEV | LibC.MS_NOEXEC, "size=16k,mode=0755");
        try (Ledger ledger = Ledger.open(disk.resolve("audit.jsonl"), "n1", Clock.systemUTC(), Long.MAX_VALUE,
                Duration.ZERO, null)) {
            Metrics metrics = new Metrics();
            Readiness readiness = new Readiness();
            AuditTrail audit = new AuditTrail(ledger, metrics, readiness);
            Policy policy = PolicyLoader.parse("""
                    keys: {openai: {}}
                    workloads:
                      - {name: alice, spiffeId: "spiffe://t/alice", selectors: ["unix:uid:1001"], keys: [openai]}
                    """, "p.yaml");
            MemoryKeySource keys = new MemoryKeySource();
            keys.set("alice", "openai", TestKeys.issued(TestKeys.random("sk-alice-", 40), Instant.now().plusSeconds(600)));
            KeyFs fs = TestKeyFs.of(policy, keys, audit, Clock.systemUTC(), Duration.ofSeconds(5));
            try (FuseSession s = FuseSession.mount(mnt, fs, FuseSession.Options.defaults("keywarden"))) {
                String api = mnt.resolve("openai/api_key").toString();
                assertTrue(Proc.as(1001, "cat", api).out().startsWith("sk-alice-"), "served while the ledger writes");

                LedgerException full = assertThrows(LedgerException.class, () -> {
                    for (int i = 0; i < 10_000; i++) {
                        audit.record(io.keywarden.daemon.audit.LedgerEvent.POLICY_LOADED, Map.of("reason", "x".repeat(200)));
                    }
                });
                assertTrue(full.getMessage().contains("cannot be written"), full.getMessage());
                assertFalse(readiness.isReady());
                assertTrue(readiness.reasons().get(0).startsWith("ledger: audit ledger"), readiness.reasons().toString());
                assertTrue(metrics.scrape().contains("keywarden_ledger_errors_total"), "a metric counts it");

                Proc.Result r = Proc.as(1001, "cat", api);
                assertTrue(r.err().contains("Input/output error"), "no key is served that cannot be recorded: " + r.err());
                assertEquals("", r.out());
            }
        } finally {
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Mounts.detach(disk);
            Proc.run("rm", "-rf", dir.toString());
        }
    }
}
