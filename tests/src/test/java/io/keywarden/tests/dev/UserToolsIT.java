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
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The tools a user of a node reaches for, against a root {@code keywarden dev} on KeyFS:
 * {@code keywarden why} and {@code keywarden exec}. {@code exec}: a command gets its key in the environment, the lease lives as long as the
 * command (the README's {@code export OPENAI_API_KEY=$(cat …)} died at the first refresh), and a
 * rotation restarts or signals it. Run as uid 1001 against a root {@code keywarden dev} on KeyFS.
 */
class UserToolsIT {
    private Path base;
    private Path mnt;
    private Path jar;
    private Daemon daemon;

    @BeforeEach
    void start() throws Exception {
        Requirements.rootAndFuse();
        base = Files.createTempDirectory("kw-exec-");
        Files.setPosixFilePermissions(base, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        mnt = base.resolve("mnt");
        jar = base.resolve("keywarden.jar");
        Files.copy(Daemon.jar(), jar);
        Proc.run("chmod", "644", jar.toString());
        Files.createDirectory(base.resolve("out"));
        Proc.run("chown", "1001:1001", base.resolve("out").toString());
        daemon = Daemon.start(Map.of("SUDO_UID", "1001"), "dev", "--mount", mnt.toString(), "--ttl", "12s",
                "--admin-socket", base.resolve("admin/admin.sock").toString(), "--audit",
                base.resolve("audit/audit.jsonl").toString(), "--listen", "127.0.0.1:" + io.keywarden.tests.support.Ports.free());
        daemon.awaitOut("serving KeyFS", 30);
    }

    @AfterEach
    void stop() throws Exception {
        if (daemon != null) {
            daemon.close();
        }
        if (mnt != null && Mounts.at(mnt).isPresent()) {
            Mounts.detach(mnt);
        }
        if (base != null) {
            Proc.run("rm", "-rf", base.toString());
        }
    }

    private Process exec(String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>(List.of("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-jar", jar.toString(), "exec",
                "--mount", mnt.toString(), "--poll", "500ms"));
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(base.resolve("exec.log").toFile()).start();
    }

    /** Lines the command wrote: one per start, "same"/"differs" (its variable against the file) and the key's hash. */
    private List<String> lines(String file) {
        Path p = base.resolve("out").resolve(file);
        try {
            return Files.exists(p) ? Files.readAllLines(p) : List.of();
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    @Test
    void theCommandHasTheKeyAndIsRestartedWithEachNewOneWhileTheLeaseLives() throws Exception {
        // Each start: does $OPENAI_API_KEY equal what the file serves this process now, and the key's hash.
        String script = "k=$(cat \"$KEYWARDEN_KEY_FILE\"); if [ \"$k\" = \"$OPENAI_API_KEY\" ]; then s=same; else s=differs;"
                + " fi; echo \"$s $(printf %s \"$OPENAI_API_KEY\" | sha256sum | cut -c1-16)\" >> " + base.resolve("out/starts")
                + "; exec sleep 300";
        Process p = exec("--", "sh", "-c", script);
        try {
            // TTL 12 s, refreshed at ~8 s: three starts take two rotations (~16 s) of a lease exec keeps alive.
            Await.until(Duration.ofSeconds(60), () -> lines("starts").size() >= 3,
                    () -> "starts: " + lines("starts") + "\n" + log());
            List<String> starts = lines("starts");
            for (String s : starts) {
                assertTrue(s.startsWith("same "), "the variable holds the key the file serves: " + starts);
            }
            assertEquals(starts.size(), starts.stream().map(s -> s.substring(5)).distinct().count(),
                    "each start has a new key: " + starts);
            String ledger = Files.readString(base.resolve("audit/audit.jsonl"));
            assertTrue(ledger.contains("\"event\":\"key.refreshed\""), "refreshed, not revoked for want of an opener");
            for (String line : ledger.split("\n")) {
                if (line.contains("\"event\":\"key.revoked\"")) {
                    assertTrue(line.contains("moved to the new key"), "only keys replaced by a refresh end: " + line);
                }
            }
            assertTrue(log().contains("keywarden exec: openai rotated"), log());
            // The key in the command's environment is closed to other uids (the kernel's rule for /proc/PID/environ).
            String child = Proc.run("pgrep", "-u", "1001", "-f", "sleep 300").out().trim().split("\n")[0];
            assertFalse(child.isEmpty(), "the command runs");
            Proc.Result other = Proc.as(1002, "cat", "/proc/" + child + "/environ");
            assertTrue(other.err().contains("Permission denied"), other.err());
            assertFalse(other.out().contains("OPENAI_API_KEY"), "nothing of the environment read");
            // The auditor's view: the workload's own accesses, by workload, with the process that opened.
            Proc.Result shown = Daemon.cli("audit", "show", base.resolve("audit/audit.jsonl").toString(), "--workload",
                    "uid-1001", "--event", "access.granted");
            assertEquals(0, shown.code(), shown.err());
            assertTrue(shown.out().lines().skip(1).findAny().isPresent(), shown.out());
            assertTrue(shown.out().lines().skip(1).allMatch(l -> l.contains(" uid-1001 ") && l.contains("uid=1001")),
                    shown.out());
        } finally {
            p.destroy();
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        }
        // A stop reaches the command: nothing of it is left.
        assertEquals(143, p.exitValue(), log());
        // A sleep of uid 1001 (by name: the script's text, "sleep 300", is in other command lines too).
        Await.until(Duration.ofSeconds(10), () -> Proc.run("pgrep", "-u", "1001", "-x", "sleep").code() != 0,
                () -> "the command outlived exec: " + Proc.run("ps", "-o", "pid,ppid,etimes,args", "-u", "1001").out()
                        + "\n" + log());
    }

    @Test
    void aRotationCanSignalTheCommandInstead() throws Exception {
        // USR1, not HUP: a test run under nohup ignores SIGHUP, which the command would inherit (exec warns of it).
        String script = "trap 'echo hup >> " + base.resolve("out/signals") + "' USR1; echo start >> "
                + base.resolve("out/signals") + "; while :; do sleep 1; done";
        Process p = exec("--on-rotate", "signal:USR1", "--", "sh", "-c", script);
        try {
            Await.until(Duration.ofSeconds(60), () -> lines("signals").contains("hup"),
                    () -> "signals: " + lines("signals") + "\n" + log());
            assertEquals(1, lines("signals").stream().filter("start"::equals).count(), "never restarted");
        } finally {
            p.destroy();
            p.waitFor(30, TimeUnit.SECONDS);
        }
    }

    /**
     * A stop that comes while a rotation restarts the command (the old one still ending) starts no
     * new command: exec ends, and nothing of uid 1001 is left running.
     */
    @Test
    void aStopDuringARestartStartsNoNewCommand() throws Exception {
        Path out = base.resolve("out");
        // The command takes 3 s to end on TERM, and says when it was asked.
        String script = "trap 'echo term >> " + out.resolve("events") + "; sleep 3; exit 0' TERM; echo start >> "
                + out.resolve("events") + "; while :; do sleep 1; done";
        Process p = exec("--grace", "20s", "--", "sh", "-c", script);
        try {
            // The first rotation asks the command to end: stop exec while that command is still ending.
            Await.until(Duration.ofSeconds(60), () -> lines("events").contains("term"),
                    () -> "events: " + lines("events") + "\n" + log());
            assertEquals(0, Proc.run("kill", "-TERM", Long.toString(p.pid())).code());
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "exec ends: " + log());
        } finally {
            p.destroyForcibly();
        }
        // The ending command was asked again by the stop (a second "term"); no new one started.
        assertEquals(1, lines("events").stream().filter("start"::equals).count(), "no second command was started: "
                + lines("events") + "\n" + log());
        Await.until(Duration.ofSeconds(10), () -> Proc.run("pgrep", "-u", "1001", "-x", "sleep").code() != 0
                        && Proc.run("pgrep", "-u", "1001", "-x", "sh").code() != 0,
                () -> "left running: " + Proc.run("ps", "-o", "pid,ppid,etimes,args", "-u", "1001").out());
    }

    @Test
    void itExitsWithTheCommandsCodeAndRefusesWhatItCannotServe() throws Exception {
        Process p = exec("--", "sh", "-c", "exit 7");
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(7, p.exitValue(), log());
        // A key this uid is not served: an error naming the file and why, the command never started.
        p = exec("--key", "anthropic", "--", "sh", "-c", "echo ran >> " + base.resolve("out/ran"));
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(2, p.exitValue(), log());
        assertTrue(log().contains("keywarden exec: " + mnt.resolve("anthropic/api_key") + " does not exist"), log());
        assertTrue(lines("ran").isEmpty());
        Proc.Result bad = Daemon.cli("exec", "--on-rotate", "signal:NOPE", "--", "true");
        assertEquals(2, bad.code());
        assertTrue(bad.err().startsWith("keywarden exec: --on-rotate must be restart, none or signal:NAME"), bad.err());
    }

    /** {@code audit show} without FILE: the daemon verifies and filters its own ledger, and refuses it edited. */
    @Test
    void auditShowWithoutAFileIsTheDaemonsLedgerVerifiedByTheDaemon() throws Exception {
        String sock = base.resolve("admin/admin.sock").toString();
        Path ledger = base.resolve("audit/audit.jsonl");
        assertEquals(0, Daemon.cli("revoke", "--admin-socket", sock, "--workload", "uid-1001", "--reason", "audit test")
                .code());
        for (String[] filter : new String[][] {{"--event", "admin.revoke"}, {"--workload", "uid-1001", "--json"},
            {"--event", "daemon.started", "--since", "1h"}}) {
            List<String> fromFile = new java.util.ArrayList<>(List.of("audit", "show", ledger.toString()));
            fromFile.addAll(List.of(filter));
            List<String> fromDaemon = new java.util.ArrayList<>(List.of("audit", "show", "--admin-socket", sock));
            fromDaemon.addAll(List.of(filter));
            Proc.Result f = Daemon.cli(fromFile.toArray(String[]::new));
            Proc.Result d = Daemon.cli(fromDaemon.toArray(String[]::new));
            assertEquals(0, d.code(), d.err());
            assertEquals(f.out(), d.out(), "the same records as the file shows, for " + List.of(filter));
            assertTrue(d.out().contains("uid-1001") || d.out().contains("daemon.started"), d.out());
        }
        Proc.Result merged = Daemon.cli("audit", "show", "--admin-socket", sock, "--merged");
        assertEquals(2, merged.code(), merged.err());
        assertTrue(merged.err().contains("--merged reads a FILE"), merged.err());
        // An edited record: the daemon refuses to show its ledger, as audit show FILE does.
        List<String> lines = Files.readAllLines(ledger);
        lines.set(1, lines.get(1).replace("\"seq\":2", "\"seq\":2,\"x\":1"));
        Files.write(ledger, lines);
        Proc.Result edited = Daemon.cli("audit", "show", "--admin-socket", sock);
        assertEquals(1, edited.code(), edited.out() + edited.err());
        assertTrue(edited.err().contains("does not verify (BROKEN at record 2"), edited.err());
        assertFalse(edited.out().contains("daemon.started"), "nothing of it shown");
    }

    @Test
    void whySaysTheDecisionAndTheRuleThatFails() throws Exception {
        Process mine = new ProcessBuilder("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "sleep", "120").start();
        Process other = new ProcessBuilder("setpriv", "--reuid=1002", "--regid=1002", "--clear-groups", "sleep", "120").start();
        String sock = base.resolve("admin/admin.sock").toString();
        try {
            Await.until(Duration.ofSeconds(10), () -> Proc.run("grep", "-q", "Uid:\t1002", "/proc/" + other.pid()
                    + "/status").code() == 0 && Proc.run("grep", "-q", "Uid:\t1001", "/proc/" + mine.pid() + "/status")
                    .code() == 0, () -> "the processes never took their uids");
            Proc.Result allowed = Daemon.cli("why", "--admin-socket", sock, "--pid", Long.toString(mine.pid()));
            assertEquals(0, allowed.code(), allowed.err());
            assertEquals("pid " + mine.pid() + " (uid 1001, exe /usr/bin/sleep): workload uid-1001"
                    + " (spiffe://dev.keywarden.local/uid/1001)\n  openai: allowed\n", allowed.out());
            Proc.Result refused = Daemon.cli("why", "--admin-socket", sock, "--pid", Long.toString(other.pid()));
            assertEquals(0, refused.code(), refused.err());
            assertEquals("pid " + other.pid() + " (uid 1002, exe /usr/bin/sleep): refused for every key — no workload's"
                    + " selectors match\n  workload uid-1001: selector unix:uid:1001 does not match\n", refused.out());
            Proc.Result byUid = Daemon.cli("why", "--admin-socket", sock, "--uid", "1001", "--key", "openai");
            assertEquals("uid 1001: workload uid-1001 (spiffe://dev.keywarden.local/uid/1001)\n  openai: allowed\n",
                    byUid.out());
            // A block is the rule that fails once the workload is blocked.
            assertEquals(0, Daemon.cli("revoke", "--admin-socket", sock, "--workload", "uid-1001", "--block", "--reason",
                    "test").code());
            Proc.Result blocked = Daemon.cli("why", "--admin-socket", sock, "--pid", Long.toString(mine.pid()));
            assertTrue(blocked.out().contains("openai: refused — workload uid-1001 is blocked"), blocked.out());
            Proc.Result gone = Daemon.cli("why", "--admin-socket", sock, "--pid", "2147483000");
            assertEquals(1, gone.code(), "undecided for a process that does not exist");
        } finally {
            mine.destroy();
            other.destroy();
        }
    }

    private String log() {
        Path l = base.resolve("exec.log");
        try {
            return Files.exists(l) ? Files.readString(l) : "";
        } catch (java.io.IOException e) {
            return "(exec.log unreadable: " + e.getMessage() + ")";
        }
    }
}
