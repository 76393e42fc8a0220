package io.keywarden.tests.dev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** `keywarden revoke` / `unblock` against a running `keywarden dev`, through the admin socket. */
class KillSwitchIT {
    static final String ID = "spiffe://dev.keywarden.local/uid/1001";

    static Proc.Result cli(String... args) {
        return Daemon.cli(args);
    }

    @Test
    void revokeGivesANewKeyAndBlockGivesEaccesWithinASecond() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-kill-");
        Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mnt = dir.resolve("mnt");
        Path sock = dir.resolve("admin/admin.sock");
        Path ledger = dir.resolve("audit.jsonl");
        int port = io.keywarden.tests.support.Ports.free();
        try (Daemon d = Daemon.start(Map.of("SUDO_UID", "1001"), "dev", "--mount", mnt.toString(), "--ttl", "5m",
                "--audit", ledger.toString(), "--admin-socket", sock.toString(), "--listen", "127.0.0.1:" + port)) {
            d.awaitOut("serving KeyFS", 30);
            String api = mnt.resolve("openai/api_key").toString();
            String first = Proc.as(1001, "cat", api).out();
            assertTrue(first.startsWith("sk-dev-"), "uid 1001 reads its key");
            assertEquals("srw-------", Proc.run("stat", "-c", "%A", sock.toString()).out().trim());

            Proc.Result status = cli("status", "--admin-socket", sock.toString());
            assertEquals(0, status.code(), status.err());
            assertTrue(status.out().contains("uid-1001") && !status.out().contains(first), "status names leases, never keys");

            long t0 = System.nanoTime();
            Proc.Result r = cli("revoke", "--admin-socket", sock.toString(), "--spiffe-id", ID, "--reason", "leaked");
            assertEquals(0, r.code(), r.err());
            String second = Proc.as(1001, "cat", api).out();
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(second.startsWith("sk-dev-"));
            assertNotEquals(first, second, "a fresh key after revoke");
            System.out.println("revoke -> next open with a new key: " + ms + " ms (including a JVM start for the CLI)");

            t0 = System.nanoTime();
            assertEquals(0, cli("revoke", "--admin-socket", sock.toString(), "--spiffe-id", ID, "--block", "--reason",
                    "incident 42").code());
            Proc.Result blocked = Proc.as(1001, "cat", api);
            ms = (System.nanoTime() - t0) / 1_000_000;
            assertTrue(blocked.err().contains("Permission denied"), blocked.err());
            System.out.println("revoke --block -> EACCES: " + ms + " ms (including a JVM start for the CLI)");
            assertEquals("error: blocked by operator (uid 0): incident 42\n",
                    Proc.as(1001, "cat", mnt.resolve("openai/status").toString()).out());

            assertEquals(0, cli("unblock", "--admin-socket", sock.toString(), "--spiffe-id", ID).code());
            assertTrue(Proc.as(1001, "cat", api).out().startsWith("sk-dev-"));

            Proc.Result unknown = cli("revoke", "--admin-socket", sock.toString(), "--spiffe-id", "spiffe://x/y");
            assertEquals(2, unknown.code());

            String text = Files.readString(ledger);
            assertTrue(text.contains("revoked by operator (uid 0): leaked"), "who and why are in the ledger");
            assertTrue(text.contains("blocked by operator (uid 0): incident 42"));
            assertEquals(0, d.stop(), "SIGTERM is a requested stop: exit 0");
        } finally {
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    @Test
    void everyOperatorActionIsRecordedAndBlocksSurviveARestart() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-kill2-");
        Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mnt = dir.resolve("mnt");
        Path sock = dir.resolve("admin/admin.sock");
        Path ledger = dir.resolve("audit.jsonl");
        int port = io.keywarden.tests.support.Ports.free();
        String[] args = {"dev", "--mount", mnt.toString(), "--ttl", "5m", "--audit", ledger.toString(), "--admin-socket",
            sock.toString(), "--listen", "127.0.0.1:" + port};
        String api = mnt.resolve("openai/api_key").toString();
        try {
            try (Daemon d = Daemon.start(Map.of("SUDO_UID", "1001"), args)) {
                d.awaitOut("serving KeyFS", 30);
                // Nothing live yet: the revoke is still the operator's act, and recorded.
                assertEquals(0, cli("revoke", "--admin-socket", sock.toString(), "--workload", "uid-1001", "--reason", "drill").code());
                assertEquals(0, cli("revoke", "--admin-socket", sock.toString(), "--spiffe-id", ID, "--block", "--reason",
                        "incident 43").code());
                assertTrue(Proc.as(1001, "cat", api).err().contains("Permission denied"));
                assertEquals(0, d.stop());
            }
            try (Daemon d = Daemon.start(Map.of("SUDO_UID", "1001"), args)) {
                d.awaitOut("serving KeyFS", 30);
                assertTrue(Proc.as(1001, "cat", api).err().contains("Permission denied"), "still blocked after a restart");
                assertTrue(cli("status", "--admin-socket", sock.toString()).out().contains("incident 43"));
                assertEquals(0, cli("unblock", "--admin-socket", sock.toString(), "--spiffe-id", ID).code());
                assertTrue(Proc.as(1001, "cat", api).out().startsWith("sk-dev-"));
                assertEquals(0, d.stop());
            }
            String text = Files.readString(ledger);
            for (String event : new String[] {"admin.revoke", "admin.block", "admin.unblock"}) {
                assertTrue(text.lines().anyMatch(l -> l.contains("\"event\":\"" + event + "\"") && l.contains("\"operator\":\"uid 0\"")
                        && l.contains(ID)), event + " recorded with the operator: " + text);
            }
            assertTrue(text.contains("\"reason\":\"drill\""));
            Proc.Result ok = cli("audit", "verify", ledger.toString());
            assertEquals(0, ok.code(), ok.out());
            assertTrue(ok.out().contains("; head "), ok.out());
            // Cut the last two records off: the chain alone still verifies, the head file says otherwise.
            List<String> lines = Files.readAllLines(ledger);
            Files.write(ledger, lines.subList(0, lines.size() - 2));
            Proc.Result cut = cli("audit", "verify", ledger.toString());
            assertEquals(1, cut.code(), cut.out());
            assertTrue(cut.out().contains("TRUNCATED after record " + (lines.size() - 2)), cut.out());
        } finally {
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }
}
