package io.keywarden.tests.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.delivery.IssuedKey;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.vault.FakeVault;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * One daemon, two issuer instances side by side: {@code openai} comes from a Vault instance
 * (the workload's JWT-SVID logs in with the instance's own audience; the role comes from the
 * workload's params), {@code scratch} from a dev instance. Each lease is revoked at the instance
 * that issued it; the metrics and the ledger name the instance.
 */
class TwoIssuersIT {

    @Test
    void aVaultKeyAndADevKeyFromTwoInstances() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-two-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        int port = io.keywarden.tests.support.Ports.free();
        String jwksUrl = "http://127.0.0.1:" + port + "/.well-known/jwks.json";
        // The Vault role checks the audience: "openbao", the instance's, not identity.audience ("vault").
        try (FakeVault vault = new FakeVault(() -> RunWithVaultIT.fetch(jwksUrl))
                .role("svc-reviewer", "spiffe://example.org/ns/agents/sa/reviewer", "openbao", Duration.ofMinutes(10),
                        Duration.ofHours(1)).start()) {
            Path mnt = dir.resolve("mnt");
            Files.writeString(dir.resolve("policy.yaml"), """
                    keys:
                      openai:
                        issuer: bao
                        vault: {role: "{workload.params.role}", path: "openai/creds/{workload.params.role}"}
                      scratch:
                        issuer: scratch
                    workloads:
                      - name: reviewer
                        spiffeId: spiffe://example.org/ns/agents/sa/reviewer
                        selectors: [unix:uid:1001]
                        keys: [openai, scratch]
                        params: {role: svc-reviewer}
                    """);
            Path config = Files.writeString(dir.resolve("config.yaml"), """
                    node: it-node
                    policy: policy.yaml
                    identity: {provider: dev, audience: vault}
                    issuers:
                      bao: {type: vault, address: "%s", authMount: jwt, timeout: 5s, audience: openbao}
                      scratch: {type: dev, ttl: 2m}
                    delivery: {mode: fuse, path: %s}
                    audit: {file: audit.jsonl}
                    ops: {listen: "127.0.0.1:%d"}
                    admin: {socket: %s}
                    revokeOnShutdown: true
                    """.formatted(vault.address(), mnt, port, dir.resolve("admin/admin.sock")));
            Proc.Result check = Daemon.cli("policy", "check", "--config", config.toString(),
                    dir.resolve("policy.yaml").toString());
            assertEquals(0, check.code(), check.err());
            assertTrue(check.out().contains("key openai: issuer bao (vault)"), check.out());
            try (Daemon d = Daemon.start(Map.of(), "run", "--config", config.toString())) {
                d.awaitOut("serving KeyFS", 30);
                assertTrue(String.join("\n", d.out).contains("issuers bao (vault), scratch (dev, key TTL 2m)"),
                        String.join("\n", d.out));
                String fromVault = Proc.as(1001, "cat", mnt.resolve("openai/api_key").toString()).out();
                String fromDev = Proc.as(1001, "cat", mnt.resolve("scratch/api_key").toString()).out();
                assertTrue(fromVault.startsWith("sk-vault-"), "openai comes from the Vault instance");
                assertTrue(fromDev.startsWith("sk-dev-"), "scratch comes from the dev instance");
                assertEquals(1, vault.logins.get(), "one login, with the instance's audience and the param's role");
                assertEquals(1, vault.reads.get(), "Vault issued openai only");
                assertTrue(vault.leases.values().stream().anyMatch(l -> l.fingerprint().equals(IssuedKey.fingerprint(fromVault))));
                assertTrue(Proc.as(1002, "cat", mnt.resolve("scratch/api_key").toString()).err().contains("Permission denied"));

                String metrics = RunWithVaultIT.fetch("http://127.0.0.1:" + port + "/metrics");
                assertTrue(metrics.contains("keywarden_issuer_request_seconds_count{issuer=\"bao\",op=\"issue\"} 1"), metrics);
                assertTrue(metrics.contains("keywarden_issuer_request_seconds_count{issuer=\"scratch\",op=\"issue\"} 1"),
                        metrics);

                assertEquals(0, d.stop());
                assertEquals(0, vault.liveLeases().size(), "the Vault lease was revoked at Vault");
                assertEquals(1, vault.revokedLeases.size(), "and only that one: the dev lease went to the dev instance");
            }
            List<String> ledger = Files.readAllLines(dir.resolve("audit.jsonl"));
            assertEquals(2, ledger.stream().filter(l -> l.contains("\"event\":\"key.revoked\"")).count(), String.join("\n", ledger));
            assertFalse(String.join("\n", ledger).contains("sk-vault-") || String.join("\n", ledger).contains("sk-dev-"),
                    "no key in the ledger");
        } finally {
            Proc.run("sh", "-c", "grep -q '" + dir + "/mnt' /proc/mounts && umount -l '" + dir + "/mnt'; rm -rf '" + dir + "'");
        }
    }
}
