package io.keywarden.tests.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.delivery.IssuedKey;
import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.RunConfig;
import io.keywarden.testkit.Await;
import io.keywarden.tests.vault.FakeVault;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * `keywarden run` with the dev identity provider and the fake Vault: Vault verifies keywarden's
 * JWT-SVIDs against its JWKS endpoint, the key is the one Vault issued, it is refreshed before its
 * 20 s TTL ends, the old lease is revoked, and shutdown revokes the rest.
 */
class RunWithVaultIT {

    static String fetch(String url) {
        try {
            return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
        } catch (Exception e) {
            throw new IllegalStateException("JWKS unavailable: " + e.getMessage());
        }
    }

    /** A test's body, given its directory (config.yaml, policy.yaml, audit.jsonl), the mount point and the Vault. */
    interface Scenario {
        void run(Path dir, Path mnt, FakeVault vault) throws Exception;
    }

    /**
     * {@code keywarden run} material for one workload (reviewer, uid 1001) whose key {@code openai}
     * is {@code key} (YAML, indented for the key's block) at a fake Vault that trusts the dev identity.
     */
    static void withVault(String key, Scenario body) throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-run-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        int port = io.keywarden.tests.support.Ports.free();
        String jwksUrl = "http://127.0.0.1:" + port + "/.well-known/jwks.json";
        try (FakeVault vault = new FakeVault(() -> fetch(jwksUrl))
                .role("reviewer", "spiffe://example.org/ns/agents/sa/reviewer", "vault", Duration.ofMinutes(10),
                        Duration.ofHours(1)).start()) {
            Path mnt = dir.resolve("mnt");
            Files.writeString(dir.resolve("policy.yaml"), "keys:\n  openai:\n" + key + """
                    workloads:
                      - name: reviewer
                        spiffeId: spiffe://example.org/ns/agents/sa/reviewer
                        selectors: [unix:uid:1001]
                        keys: [openai]
                    """);
            RunConfig.vaultFuse(dir, "{provider: dev, audience: vault}", vault.address(), "5s", mnt, port,
                    dir.resolve("admin/admin.sock"));
            body.run(dir, mnt, vault);
        } finally {
            Proc.run("sh", "-c", "grep -q '" + dir + "/mnt' /proc/mounts && umount -l '" + dir + "/mnt'; rm -rf '" + dir + "'");
        }
    }

    @Test
    void servesVaultKeysRefreshesBeforeExpiryAndRevokes() throws Exception {
        withVault("""
                    vault: {role: "{workload}", path: "openai/creds/{workload}", ttl: 20s}
                    refreshAt: 0.5
                    grace: 5s
                """, (dir, mnt, vault) -> {
            try (Daemon d = Daemon.start(Map.of(), "run", "--config", dir.resolve("config.yaml").toString())) {
                d.awaitOut("serving KeyFS", 30);
                String api = mnt.resolve("openai/api_key").toString();
                String first = Proc.as(1001, "cat", api).out();
                assertTrue(first.startsWith("sk-vault-"), "the key Vault issued");
                Set<String> issued = vault.leases.values().stream().map(FakeVault.LeaseRec::fingerprint).collect(Collectors.toSet());
                assertTrue(issued.contains(IssuedKey.fingerprint(first)));
                assertEquals(1, vault.logins.get(), "one JWT login per lease, verified against keywarden's JWKS");
                assertTrue(Proc.as(1002, "cat", api).err().contains("Permission denied"));

                // Refreshed at half of the 20 s lease: the file serves another key (compared, never printed).
                Await.until(Duration.ofSeconds(30), () -> !first.equals(Proc.as(1001, "cat", api).out()),
                        () -> "the key was not refreshed within 30 s of a 20 s lease");
                String second = Proc.as(1001, "cat", api).out();
                assertTrue(second.startsWith("sk-vault-"));
                assertEquals(2, vault.reads.get(), "exactly one issuance per refresh");
                String firstLease = vault.leases.values().stream().filter(l -> l.fingerprint().equals(IssuedKey.fingerprint(first)))
                        .findFirst().orElseThrow().id();
                Await.until(Duration.ofSeconds(15), () -> vault.revokedLeases.contains(firstLease),
                        () -> "the old lease was not revoked at the provider");
                assertEquals(1, vault.liveLeases().size());

                assertEquals(0, d.stop(), "SIGTERM is a requested stop: exit 0");
                assertEquals(0, vault.liveLeases().size(), "shutdown revoked every lease");
                assertTrue(Mounts.at(mnt).isEmpty());
                String ledger = Files.readString(dir.resolve("audit.jsonl"));
                assertTrue(ledger.contains("\"provider_key_id\":\"key_"), "the OpenAI api_key_id is in the ledger");
                assertFalse(ledger.contains(first) || ledger.contains(second), "no key in the ledger");
                String out = String.join("\n", d.out) + String.join("\n", d.err);
                assertFalse(out.contains(first) || out.contains(second) || out.contains("hvs.") || out.contains("eyJ"),
                        "no key, token or JWT in the daemon's output");
            }
        });
    }

    /** kill -9, then a new run: the lease the killed run left is revoked at Vault, by its lease id in the ledger. */
    @Test
    void aLeaseAKilledRunLeftIsRevokedAtVaultByTheNextRun() throws Exception {
        withVault("""
                    vault: {role: "{workload}", path: "openai/creds/{workload}", ttl: 10m}
                """, (dir, mnt, vault) -> {
            String lease;
            try (Daemon d = Daemon.start(Map.of(), "run", "--config", dir.resolve("config.yaml").toString())) {
                d.awaitOut("serving KeyFS", 30);
                assertTrue(Proc.as(1001, "cat", mnt.resolve("openai/api_key").toString()).out().startsWith("sk-vault-"));
                lease = vault.leases.keySet().iterator().next();
                Proc.run("kill", "-KILL", Long.toString(d.pid()));
                d.waitFor(10);
            }
            assertEquals(1, vault.liveLeases().size(), "the killed run revoked nothing");
            try (Daemon d = Daemon.start(Map.of(), "run", "--config", dir.resolve("config.yaml").toString())) {
                d.awaitOut("serving KeyFS", 30);
                Await.until(Duration.ofSeconds(30), () -> vault.revokedLeases.contains(lease),
                        () -> "the killed run's lease is still live at Vault: " + String.join("\n", d.out) + String.join("\n", d.err));
                Await.until(Duration.ofSeconds(10), () -> Files.readString(dir.resolve("audit.jsonl"))
                        .contains("\"event\":\"daemon.recovered\""), () -> "daemon.recovered on record");
                assertEquals(0, d.stop());
            }
            String ledger = Files.readString(dir.resolve("audit.jsonl"));
            assertTrue(ledger.contains("\"event\":\"daemon.unclean_stop\""), ledger);
            assertTrue(ledger.lines().anyMatch(l -> l.contains("\"event\":\"daemon.recovered\"")
                    && l.contains("\"revoked\":[\"" + lease + "\"]") && l.contains("\"left\":[]")), ledger);
            assertEquals(0, vault.liveLeases().size(), "nothing left live at Vault");
        });
    }
}
