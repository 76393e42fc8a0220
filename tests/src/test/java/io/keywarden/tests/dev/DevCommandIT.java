package io.keywarden.tests.dev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.linux.Mounts;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** `keywarden dev` end to end: the real jar, the real mount, readers of several uids. */
class DevCommandIT {
    static final Pattern DEV_KEY = Pattern.compile("sk-dev-[A-Za-z0-9]{48}");

    static final Pattern JWT = Pattern.compile("eyJ[A-Za-z0-9_-]{8,}\\.eyJ");

    static String get(int port, String path) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + port + path)).build(), HttpResponse.BodyHandlers.ofString());
        return r.statusCode() + " " + r.body();
    }

    @Test
    void servesTheInvokingUserRefusesOthersRefreshesAndCleansUp() throws Exception {
        Requirements.rootAndFuse();
        // The mount point in a directory only root can write: its lock file goes beside it (/tmp itself is refused).
        Path base = Files.createTempDirectory("kw-dev-");
        Files.setPosixFilePermissions(base, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mnt = base.resolve("mnt");
        Path ledger = Files.createTempDirectory("kw-dev-audit-").resolve("audit.jsonl");
        int port = io.keywarden.tests.support.Ports.free();
        try (Daemon d = Daemon.start(Map.of("SUDO_UID", "1001"), "dev", "--mount", mnt.toString(), "--ttl", "12s",
                "--audit", ledger.toString(), "--listen", "127.0.0.1:" + port)) {
            String ready = d.awaitOut("serving KeyFS", 30);
            assertTrue(ready.contains(mnt.toString()), ready);
            d.awaitOut("readable by uid 1001 (spiffe://dev.keywarden.local/uid/1001)", 5);
            String api = mnt.resolve("openai/api_key").toString();

            Proc.Result mine = Proc.as(1001, "cat", api);
            assertEquals(0, mine.code(), mine.err());
            assertTrue(DEV_KEY.matcher(mine.out()).matches(), "a dev key, no newline");
            assertEquals(mine.out(), Proc.as(1001, "cat", api).out(), "one lease per workload, not one key per open");
            Proc.Result other = Proc.as(1002, "cat", api);
            assertTrue(other.err().contains("Permission denied"), other.err());
            assertFalse(other.out().contains("sk-"));
            Instant exp = Instant.parse(Proc.as(1001, "cat", mnt.resolve("openai/expires_at").toString()).out().trim());
            assertTrue(exp.isAfter(Instant.now()) && exp.isBefore(Instant.now().plusSeconds(13)), exp.toString());

            // Refreshed before expiry (refreshAt 0.67 of 12 s): another key, compared and never printed.
            Await.until(java.time.Duration.ofSeconds(30), () -> !mine.out().equals(Proc.as(1001, "cat", api).out()),
                    () -> "the key was not refreshed within 30 s of a 12 s lease");
            Proc.Result later = Proc.as(1001, "cat", api);
            assertTrue(DEV_KEY.matcher(later.out()).matches());
            assertTrue(Instant.parse(Proc.as(1001, "cat", mnt.resolve("openai/expires_at").toString()).out().trim())
                    .isAfter(exp), "a later expiry");
            assertEquals("ok\n", Proc.as(1001, "cat", mnt.resolve("openai/status").toString()).out());

            assertEquals("200 ok\n", get(port, "/healthz"));
            assertEquals("200 {\"ready\":true,\"reasons\":[],\"degraded\":[]}", get(port, "/readyz"));
            String jwks = get(port, "/.well-known/jwks.json");
            assertTrue(jwks.startsWith("200 {\"keys\":[{\"kty\":\"EC\""), jwks);
            String metrics = get(port, "/metrics");
            assertTrue(metrics.contains("keywarden_access_total{decision=\"denied\",key=\"openai\",workload=\"\"} 1.0"),
                    metrics);
            assertTrue(metrics.contains("keywarden_access_total{decision=\"granted\",key=\"openai\",workload=\"uid-1001\"}"),
                    metrics);
            assertTrue(metrics.contains("keywarden_workload_leases{key=\"openai\",workload=\"uid-1001\"} 1.0"), metrics);
            assertTrue(metrics.contains("keywarden_ready 1.0") && metrics.contains("keywarden_build_info{commit="), metrics);
            assertTrue(metrics.contains("keywarden_key_refreshes_total{issuer=\"dev\",key=\"openai\",outcome=\"ok\"}"), metrics);
            assertTrue(metrics.contains("keywarden_issuer_request_seconds_count{issuer=\"dev\",op=\"issue\"}"), metrics);

            int code = d.stop();
            assertEquals(0, code, "SIGTERM is a requested stop: exit 0");
            assertTrue(Mounts.at(mnt).isEmpty(), "SIGTERM unmounts");
            String log = String.join("\n", d.err);
            assertTrue(log.contains("(shutdown)"), "leases revoked on shutdown: " + log);
            String ledgerText = Files.readString(ledger);
            String everything = log + String.join("\n", d.out) + ledgerText + metrics + jwks;
            assertFalse(DEV_KEY.matcher(everything).find(), "no key in the ledger, logs, stdout or metrics");
            assertFalse(JWT.matcher(everything).find(), "no JWT in the ledger, logs, stdout or metrics");
            assertFalse(everything.contains(mine.out()) || everything.contains(later.out()));

            Proc.Result verify = Proc.run(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar",
                    Daemon.jar().toString(), "audit", "verify", ledger.toString());
            assertEquals(0, verify.code(), verify.out() + verify.err());
            assertTrue(verify.out().matches("OK: \\d+ records; head \\d+:[0-9a-f]{64}\n"), verify.out());
            for (String event : new String[] {"daemon.started", "policy.loaded", "key.issued", "key.refreshed",
                "key.revoked", "access.granted", "access.denied", "daemon.stopped"}) {
                assertTrue(ledgerText.contains("\"event\":\"" + event + "\""), "ledger has " + event);
            }
            assertTrue(ledgerText.contains("\"uid\":1002") && ledgerText.contains("no workload's selectors match"),
                    "the refused reader is in the ledger");
        } finally {
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", base.toString());
            try (var files = Files.list(ledger.getParent())) {
                for (Path f : (Iterable<Path>) files::iterator) {
                    Files.delete(f);
                }
            }
            Files.delete(ledger.getParent());
        }
    }

    @Test
    void withoutRootTheTmpfsFallbackDeliversToItsOwnerOnly() throws Exception {
        Requirements.root();
        Path xdg = Files.createTempDirectory("kw-xdg-");
        io.keywarden.linux.Mounts.mount("kw-test", xdg, "tmpfs", 6, "size=8m,mode=0700,uid=1001,gid=1001");
        Path jar = xdg.resolveSibling(xdg.getFileName() + ".jar");
        Files.copy(Daemon.jar(), jar);
        Proc.run("chmod", "644", jar.toString());
        int port = io.keywarden.tests.support.Ports.free();
        Process p = new ProcessBuilder("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "env", "HOME=" + xdg,
                "XDG_RUNTIME_DIR=" + xdg, Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar",
                jar.toString(), "dev", "--listen", "127.0.0.1:" + port).redirectErrorStream(true)
                .redirectOutput(xdg.resolveSibling(xdg.getFileName() + ".log").toFile()).start();
        try {
            // The root layout, <dir>/<key>/api_key, under $XDG_RUNTIME_DIR/keywarden.
            Path key = xdg.resolve("keywarden/openai/api_key");
            Await.until(java.time.Duration.ofSeconds(30), () -> Proc.as(1001, "cat", key.toString()).out().startsWith("sk-dev-"),
                    () -> "the owner never read its key: " + Proc.run("cat", xdg.resolveSibling(xdg.getFileName() + ".log")
                            .toString()).out());
            assertEquals("-r--------", Proc.run("stat", "-c", "%A", key.toString()).out().trim(), "owner-only");
            Proc.Result other = Proc.as(1002, "cat", key.toString());
            assertTrue(other.err().contains("Permission denied"), other.err());
            // The key can be served before the banner is written: wait for the banner's last line.
            Path logFile = xdg.resolveSibling(xdg.getFileName() + ".log");
            Await.until(java.time.Duration.ofSeconds(30), () -> Files.readString(logFile).contains("admin socket: "),
                    () -> "no banner: " + Proc.run("cat", logFile.toString()).out());
            String log = Files.readString(logFile);
            assertTrue(log.contains("keywarden: not running as root: mounting FUSE needs CAP_SYS_ADMIN; falling back to"
                    + " tmpfs delivery in " + xdg.resolve("keywarden")), log);
            assertTrue(log.contains("admin socket: " + xdg.resolve("keywarden-admin.sock")), log);
            // status, as the same user, finds the daemon's socket without being told.
            Proc.Result status = Proc.run("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "env", "HOME=" + xdg,
                    "XDG_RUNTIME_DIR=" + xdg, Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar",
                    jar.toString(), "status");
            assertEquals(0, status.code(), status.err());
            assertTrue(status.out().contains("delivery tmpfs " + xdg.resolve("keywarden")), status.out());
            // exec, as the same user, finds the key without --mount and hands it to its command.
            Proc.Result exec = Proc.run("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "env", "HOME=" + xdg,
                    "XDG_RUNTIME_DIR=" + xdg, Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar",
                    jar.toString(), "exec", "--", "sh", "-c", "case \"$OPENAI_API_KEY\" in sk-dev-*) ;; *) exit 9;; esac;"
                            + " test \"$OPENAI_API_KEY\" = \"$(cat \"$KEYWARDEN_KEY_FILE\")\" && echo same");
            assertEquals(0, exec.code(), exec.err());
            assertEquals("same\n", exec.out());
        } finally {
            p.destroy();
            p.waitFor(30, java.util.concurrent.TimeUnit.SECONDS);
            p.destroyForcibly();
            io.keywarden.linux.Mounts.detach(xdg);
            Proc.run("rm", "-rf", xdg.toString(), jar.toString(), xdg.resolveSibling(xdg.getFileName() + ".log").toString());
        }
    }

    /** The laptop route to a real provider: a dev signing key kept in a file, its JWKS registered once. */
    @Test
    void aSigningKeyFileKeepsTheDevIdentityAcrossRestarts() throws Exception {
        Requirements.rootAndFuse();
        Path base = Files.createTempDirectory("kw-devkey-");
        Files.setPosixFilePermissions(base, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Path key = base.resolve("dev-signing.jwk");
        try {
            String kid = null;
            for (int run = 0; run < 2; run++) {
                int port = io.keywarden.tests.support.Ports.free();
                try (Daemon d = Daemon.start(Map.of("SUDO_UID", "1001"), "dev", "--mount", base.resolve("mnt").toString(),
                        "--admin-socket", base.resolve("admin/admin.sock").toString(), "--listen", "127.0.0.1:" + port,
                        "--signing-key", key.toString(), "--issuer-url", "https://dev.example.test/kw/")) {
                    d.awaitOut("serving KeyFS", 30);
                    assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(
                            Files.getPosixFilePermissions(key)));
                    String jwks = get(port, "/.well-known/jwks.json");
                    java.util.regex.Matcher m = Pattern.compile("\"kid\" ?: ?\"([^\"]+)\"").matcher(jwks);
                    assertTrue(m.find(), jwks);
                    if (kid == null) {
                        kid = m.group(1);
                        // The JWKS to register is the one `keywarden jwks --key FILE` prints.
                        Proc.Result printed = Daemon.cli("jwks", "--key", key.toString());
                        assertTrue(printed.out().contains(kid), printed.out());
                        assertFalse(printed.out().contains("\"d\""), "public keys only");
                    } else {
                        assertEquals(kid, m.group(1), "the same key after a restart");
                    }
                    assertTrue(get(port, "/.well-known/openid-configuration").contains(
                            "\"issuer\":\"https://dev.example.test/kw\""));
                    assertEquals(0, d.stop());
                }
            }
            // A key file others may read is refused, naming it.
            Files.setPosixFilePermissions(key, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
            Proc.Result r = Daemon.cli("dev", "--mount", base.resolve("mnt").toString(), "--signing-key", key.toString(),
                    "--admin-socket", base.resolve("admin/admin.sock").toString(), "--listen", "127.0.0.1:0");
            assertEquals(2, r.code(), r.out() + r.err());
            assertTrue((r.out() + r.err()).contains("--signing-key " + key + " is readable by others (mode rw-r--r--)"),
                    r.out() + r.err());
        } finally {
            if (Mounts.at(base.resolve("mnt")).isPresent()) {
                Mounts.detach(base.resolve("mnt"));
            }
            Proc.run("rm", "-rf", base.toString());
        }
    }

    @Test
    void withoutRootOrARuntimeDirItSaysWhyFuseIsUnavailable() throws Exception {
        Requirements.root();
        Path home = Files.createTempDirectory("kw-home-");
        Path jar = home.resolve("keywarden.jar");
        try {
            Files.copy(Daemon.jar(), jar);
            Proc.run("chown", "-R", "1001:1001", home.toString());
            Proc.Result r = Proc.run("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "env", "-i",
                    "PATH=/usr/bin:/bin", "HOME=" + home, Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-jar", jar.toString(), "dev", "--listen", "127.0.0.1:0");
            assertEquals(2, r.code(), r.out() + r.err());
            assertTrue((r.out() + r.err()).contains("keywarden dev: FUSE is unavailable (not running as root: mounting FUSE needs"
                    + " CAP_SYS_ADMIN) and XDG_RUNTIME_DIR is not set for tmpfs delivery; pass --mount DIR on a tmpfs you"
                    + " own, or run as root for KeyFS"), r.out() + r.err());
        } finally {
            Proc.run("rm", "-rf", home.toString());
        }
    }

    @Test
    void devKeepsALedgerByDefaultAndSaysWhere() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-devledger-");
        Files.setPosixFilePermissions(dir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mnt = dir.resolve("mnt");
        Path ledger = Path.of("/var/lib/keywarden/dev-audit.jsonl");
        int port = io.keywarden.tests.support.Ports.free();
        try (Daemon d = Daemon.start(Map.of("SUDO_UID", "1001"), "dev", "--mount", mnt.toString(), "--admin-socket",
                dir.resolve("admin/admin.sock").toString(), "--listen", "127.0.0.1:" + port)) {
            d.awaitOut("serving KeyFS", 30);
            d.awaitOut("ledger: " + ledger, 5);
            long before = Files.size(ledger);
            Proc.as(4343, "cat", mnt.resolve("openai/api_key").toString());
            Await.until(java.time.Duration.ofSeconds(5), () -> Files.readString(ledger).substring((int) before)
                    .contains("\"uid\":4343"), () -> "the denial is on record without --audit");
            assertEquals(0, d.stop());
        } finally {
            if (io.keywarden.linux.Mounts.at(mnt).isPresent()) {
                io.keywarden.linux.Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    @Test
    void badPolicyIsRejectedBeforeAnythingRuns() throws Exception {
        Path p = Files.createTempFile("kw-bad-", ".yaml");
        try {
            Files.writeString(p, "keys: {openai: {refreshAt: 2}}\nworkloads: []\n");
            Proc.Result r = Proc.run(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar",
                    Daemon.jar().toString(), "dev", "--policy", p.toString());
            assertEquals(2, r.code());
            assertEquals(p + ":1:28: keys.openai.refreshAt must be strictly between 0 and 1, not 2\n", r.err());
        } finally {
            Files.delete(p);
        }
    }
}
