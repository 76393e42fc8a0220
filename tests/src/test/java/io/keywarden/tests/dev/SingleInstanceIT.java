package io.keywarden.tests.dev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.linux.Mounts;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** One daemon per mount, ledger and admin socket; only a dead owner's mount is detached as stale. */
class SingleInstanceIT {

    static List<String> dev(Path mnt, Path ledger, Path sock, int port) {
        return List.of("dev", "--mount", mnt.toString(), "--audit", ledger.toString(), "--admin-socket", sock.toString(),
                "--listen", "127.0.0.1:" + port);
    }

    static Proc.Result second(List<String> args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar", Daemon.jar().toString()));
        cmd.addAll(args);
        return Proc.withEnv(Map.of("SUDO_UID", "1001"), cmd.toArray(String[]::new));
    }

    @Test
    void aSecondInstanceIsRefusedWhileTheFirstServesAndAStaleMountIsTakenOver() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-single-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mnt = dir.resolve("mnt");
        Path ledger = dir.resolve("audit.jsonl");
        Path sock = dir.resolve("admin/admin.sock");
        int port = io.keywarden.tests.support.Ports.free();
        try (Daemon first = Daemon.start(Map.of("SUDO_UID", "1001"), dev(mnt, ledger, sock, port).toArray(String[]::new))) {
            first.awaitOut("serving KeyFS", 30);
            String api = mnt.resolve("openai/api_key").toString();
            String key = Proc.as(1001, "cat", api).out();
            assertTrue(key.startsWith("sk-dev-"));

            String[][] clashes = {
                {"the mount point", mnt.toString(), dir.resolve("b.jsonl").toString(), dir.resolve("b/admin.sock").toString()},
                {"the audit ledger", dir.resolve("mnt2").toString(), ledger.toString(), dir.resolve("c/admin.sock").toString()},
                {"the admin socket", dir.resolve("mnt3").toString(), dir.resolve("d.jsonl").toString(), sock.toString()},
            };
            for (String[] c : clashes) {
                Proc.Result r = second(dev(Path.of(c[1]), Path.of(c[2]), Path.of(c[3]), port + 1));
                assertEquals(2, r.code(), c[0] + ": " + r.out() + r.err());
                assertTrue(r.err().contains(c[0]) && r.err().contains("is already served by pid " + first.pid()), r.err());
                assertFalse(r.err().contains("unmounting"), "nothing was mounted, nothing to release: " + r.err());
                assertEquals(key, Proc.as(1001, "cat", api).out(), "the first instance still serves, its mount intact");
            }
            List<String> records = Files.readAllLines(ledger);
            assertTrue(records.stream().noneMatch(l -> l.contains("\"event\":\"daemon.stopped\"")),
                    "no second instance wrote into the first one's ledger");

            // The owner dies without unmounting: its mount is stale, its lock gone with it.
            Proc.run("kill", "-KILL", Long.toString(first.pid()));
            first.waitFor(10);
            try (Daemon next = Daemon.start(Map.of("SUDO_UID", "1001"), dev(mnt, ledger, sock, io.keywarden.tests.support.Ports.free())
                    .toArray(String[]::new))) {
                next.awaitOut("serving KeyFS", 30);
                assertTrue(Proc.as(1001, "cat", api).out().startsWith("sk-dev-"), "the stale mount was taken over");
                Await.until(java.time.Duration.ofSeconds(30), () -> Files.readString(ledger).contains(
                        "\"event\":\"daemon.recovered\""), () -> "the killed run's leases recovered");
                assertEquals(0, next.stop());
            }
            // The killed run's end is in the ledger: its last record, and the lease it left valid at the issuer.
            String issuedLease = null;
            int started = 0;
            for (String l : Files.readAllLines(ledger)) {
                if (l.contains("\"event\":\"daemon.started\"")) {
                    started++;
                }
                if (started == 1 && l.contains("\"event\":\"key.issued\"")) {
                    issuedLease = l.replaceAll(".*\"lease_id\":\"([^\"]+)\".*", "$1");
                }
            }
            List<String> after = Files.readAllLines(ledger);
            String lease = issuedLease;
            assertTrue(lease != null, "the first run issued a lease");
            int unclean = -1;
            for (int i = 0; i < after.size(); i++) {
                if (after.get(i).contains("\"event\":\"daemon.unclean_stop\"")) {
                    unclean = i;
                }
            }
            assertTrue(unclean > 0 && after.get(unclean).contains("\"leases_left\":1"), "daemon.unclean_stop recorded: "
                    + (unclean < 0 ? "none" : after.get(unclean)));
            assertTrue(after.get(unclean + 1).contains("\"event\":\"daemon.started\""), "then the new run starts");
            // Once its issuers are up, the new run revokes what the killed one left (a dev lease: as good as revoked).
            assertTrue(after.stream().anyMatch(l -> l.contains("\"event\":\"key.revoked\"") && l.contains("\"lease_id\":\""
                    + lease + "\"") && l.contains("revoked at its issuer by this run")), String.join("\n", after));
            assertTrue(after.stream().anyMatch(l -> l.contains("\"event\":\"daemon.recovered\"") && l.contains(
                    "\"revoked\":[\"" + lease + "\"]")), String.join("\n", after));
            Proc.Result verify = Daemon.cli("audit", "verify", ledger.toString());
            assertEquals(0, verify.code(), verify.out() + verify.err());
        } finally {
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }
}
