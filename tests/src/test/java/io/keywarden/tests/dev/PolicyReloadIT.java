package io.keywarden.tests.dev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.linux.Mounts;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The policy file is watched: a valid change takes effect without a restart, an invalid one is rejected. */
class PolicyReloadIT {
    static final String ALICE = """
            keys: {openai: {}}
            workloads:
              - {name: alice, spiffeId: "spiffe://t/alice", selectors: ["unix:uid:1001"], keys: [openai]}
            """;
    static final String BOB = """
            keys: {openai: {}, anthropic: {}}
            workloads:
              - {name: bob, spiffeId: "spiffe://t/bob", selectors: ["unix:uid:1002"], keys: [openai, anthropic]}
            """;

    static void write(Path f, String text) throws Exception {
        Path tmp = f.resolveSibling(".policy.tmp");
        Files.writeString(tmp, text);
        Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    @Test
    void validChangesApplyAndInvalidOnesAreRejected() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-reload-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path policy = dir.resolve("policy.yaml");
        Path mnt = dir.resolve("mnt");
        Path ledger = dir.resolve("audit.jsonl");
        write(policy, ALICE);
        int port = io.keywarden.tests.support.Ports.free();
        try (Daemon d = Daemon.start(Map.of(), "dev", "--policy", policy.toString(), "--mount", mnt.toString(), "--audit",
                ledger.toString(), "--listen", "127.0.0.1:" + port, "--admin-socket", dir.resolve("admin.sock").toString())) {
            d.awaitOut("serving KeyFS", 30);
            String api = mnt.resolve("openai/api_key").toString();
            assertTrue(Proc.as(1001, "cat", api).out().startsWith("sk-dev-"));

            write(policy, BOB);
            Await.until(Duration.ofSeconds(6), () -> Proc.as(1002, "cat", api).out().startsWith("sk-dev-"),
                    () -> "bob is served after the reload");
            assertTrue(Proc.as(1001, "cat", api).err().contains("Permission denied"), "alice is no longer");
            assertTrue(Proc.as(1002, "cat", mnt.resolve("anthropic/api_key").toString()).out().startsWith("sk-dev-"),
                    "a key the reload added is served");
            String metrics = DevCommandIT.get(port, "/metrics");
            assertTrue(metrics.lines().anyMatch(l -> l.startsWith("keywarden_active_leases{") && l.contains("key=\"anthropic\"")
                    && l.endsWith(" 1.0")), "the added key has its lease gauge: " + metrics.lines()
                    .filter(l -> l.startsWith("keywarden_active_leases")).toList());
            Await.until(Duration.ofSeconds(3), () -> Files.readString(ledger).contains("removed from the policy"),
                    () -> "alice's lease revoked because she left the policy");

            write(policy, BOB.replace("unix:uid:1002", "unix:user:bob"));
            Await.until(Duration.ofSeconds(6), () -> Files.readString(ledger).contains("\"event\":\"policy.rejected\""),
                    () -> "the invalid policy is rejected in the ledger");
            String text = Files.readString(ledger);
            assertTrue(text.contains(policy + ":4:67: workload 'bob'.selectors: unknown selector 'unix:user:bob'")
                    || text.contains("unknown selector 'unix:user:bob'"), "with policy check's message");
            assertTrue(Proc.as(1002, "cat", api).out().startsWith("sk-dev-"), "the running policy stays");
            assertEquals(0, d.stop(), "SIGTERM is a requested stop: exit 0");
        } finally {
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }
}
