package io.keywarden.tests.enforcement;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.keywarden.testkit.ManualClock;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.FuseSession;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.tests.support.CProgram;
import io.keywarden.testkit.MemoryKeySource;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.RecordingListener;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.TestKeyFs;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The same-uid bypasses, tried as an attacker would: each case mounts KeyFS for real and runs
 * unprivileged processes of the workload's own uid (user namespaces, renamed binaries, exec,
 * delegated cgroups, ptrace). Every case reads what the attacker's process printed: a key must
 * never be in it, and the denial must be recorded with its reason.
 */
class EnforcementIT {
    static final int UID = 1003;
    static final String SECRET = "sk-enforce-" + "x".repeat(40);

    Path dir;
    Path mnt;
    FuseSession session;
    RecordingListener audit;

    @org.junit.jupiter.api.BeforeEach
    void workspace() throws Exception {
        Requirements.rootAndFuse();
        dir = Files.createTempDirectory("kw-enforce-");
        Proc.run("chmod", "755", dir.toString());
    }

    KeyFs mount(String policyYaml) throws Exception {
        mnt = dir.resolve("mnt");
        Policy policy = PolicyLoader.parse(policyYaml, "policy.yaml");
        ManualClock clock = new ManualClock(Instant.now());
        MemoryKeySource keys = new MemoryKeySource();
        for (var w : policy.workloads()) {
            keys.set(w.name(), "openai", new IssuedKey(SECRET.getBytes(StandardCharsets.US_ASCII),
                    clock.instant().plus(Duration.ofMinutes(5)), "lease-" + w.name()));
        }
        audit = new RecordingListener();
        KeyFs fs = TestKeyFs.of(policy, keys, audit, clock, Duration.ofSeconds(3));
        session = FuseSession.mount(mnt, fs, FuseSession.Options.defaults("keywarden"));
        return fs;
    }

    @AfterEach
    void unmount() throws Exception {
        if (session != null) {
            session.close();
        }
        if (dir != null) {
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    String key() {
        return mnt.resolve("openai/api_key").toString();
    }

    /** A directory the attacker's uid may write in (like /tmp: sticky, world-writable). */
    Path attackerDir(String name) throws IOException {
        Path d = dir.resolve(name);
        Files.createDirectories(d);
        Proc.run("chmod", "1777", d.toString());
        return d;
    }

    /** A runnable file owned by the attacker's uid (who may rewrite, rename or replace it). */
    static Path attackerBinary(Path dir, String name, byte[] content) throws IOException {
        Path f = dir.resolve(name);
        Files.write(f, content);
        Proc.run("chown", UID + ":" + UID, f.toString());
        Proc.run("chmod", "755", f.toString());
        return f;
    }

    static String sha256(Path f) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f)));
    }

    void assertRefused(Proc.Result r, String reasonPart) {
        assertFalse(r.out().contains(SECRET), "the key reached the attacker: " + r.err());
        assertTrue(r.err().contains("Permission denied"), "expected EACCES, got: " + r.out() + " / " + r.err());
        assertTrue(audit.denials().stream().anyMatch(e -> e.reason() != null && e.reason().contains(reasonPart)),
                "denial recorded with '" + reasonPart + "': " + audit.events);
    }

    static String policy(String readers) {
        return """
                keys: {openai: {}}
                workloads:
                  - name: agent
                    spiffeId: spiffe://test.local/agent
                    selectors: [unix:uid:1003]
                    keys: [openai]
                    readers: %s
                """.formatted(readers);
    }

    @Test
    void aBinaryBindMountedOverThePermittedPathInAUserNamespaceIsRefused() throws Exception {
        mount(policy("{exe: [/usr/bin/cat]}"));
        assertTrue(Proc.as(UID, "unshare", "-Urm", "true").ok(), "unprivileged user namespaces are needed for this case");
        assertEquals(SECRET, Proc.as(UID, "cat", key()).out(), "the permitted program reads its key");
        // In its own mount namespace the attacker puts head where cat was; /proc/PID/exe says /usr/bin/cat.
        Proc.Result r = Proc.as(UID, "unshare", "-Urm", "sh", "-c",
                "mount --bind /usr/bin/head /usr/bin/cat && readlink /proc/self/exe >&2; exec /usr/bin/cat -c 200 " + key());
        assertRefused(r, "is not a permitted reader");
    }

    @Test
    void aFileNamedLikeADeletedPermittedBinaryIsRefused() throws Exception {
        Path bin = attackerDir("bin");
        Path agent = bin.resolve("agent");
        Files.copy(Path.of("/usr/bin/cat"), agent);
        Proc.run("chmod", "755", agent.toString());
        mount(policy("{exe: [" + agent + "]}"));
        assertEquals(SECRET, Proc.as(UID, agent.toString(), key()).out(), "the permitted program reads its key");
        // Its /proc/PID/exe reads "<agent> (deleted)": the name the old check stripped and matched.
        Path fake = bin.resolve("agent (deleted)");
        assertTrue(Proc.as(UID, "cp", "/usr/bin/head", fake.toString()).ok());
        Proc.Result r = Proc.as(UID, fake.toString(), "-c", "200", key());
        assertRefused(r, "is not a permitted reader");
    }

    @Test
    void aDeletedPermittedBinaryStillMatchesOnlyIfItIsTheSameFile() throws Exception {
        Path bin = attackerDir("bin");
        Path agent = attackerBinary(bin, "agent", Files.readAllBytes(Path.of("/usr/bin/cat")));
        Path fifo = bin.resolve("go");
        assertTrue(Proc.run("mkfifo", "-m", "666", fifo.toString()).ok());
        mount(policy("{exe: [" + agent + "]}"));
        // The running binary is replaced at its path while it waits: it now runs a deleted file.
        var running = java.util.concurrent.CompletableFuture.supplyAsync(
                () -> Proc.as(UID, agent.toString(), fifo.toString(), key()));
        // Running and waiting on the fifo before its binary is replaced.
        io.keywarden.testkit.Await.until(Duration.ofSeconds(10), () -> Proc.run("pgrep", "-f", fifo.toString()).ok(),
                () -> "the agent did not start");
        assertTrue(Proc.as(UID, "sh", "-c", "cp " + agent + " " + agent + ".new && mv " + agent + ".new " + agent).ok());
        assertTrue(Proc.run("sh", "-c", "echo go > " + fifo).ok());
        Proc.Result old = running.get(30, java.util.concurrent.TimeUnit.SECONDS);
        assertRefused(old, "is not a permitted reader");
        Proc.Result fresh = Proc.as(UID, agent.toString(), key());
        assertEquals(SECRET, fresh.out(), "the file now at the permitted path is permitted: " + fresh.err());
    }

    @Test
    void aBinaryRewrittenInPlaceWithItsMtimeRestoredFailsTheDigest() throws Exception {
        Path bin = attackerDir("bin");
        // Two runnable binaries of the same size: cat and head, padded with zeros to one length.
        byte[] cat = Files.readAllBytes(Path.of("/usr/bin/cat"));
        byte[] head = Files.readAllBytes(Path.of("/usr/bin/head"));
        int size = Math.max(cat.length, head.length) + 64;
        Path agent = attackerBinary(bin, "agent", java.util.Arrays.copyOf(cat, size));
        Path other = attackerBinary(bin, "other", java.util.Arrays.copyOf(head, size));
        mount(policy("{sha256: [" + sha256(agent) + "]}"));
        assertEquals(SECRET, Proc.as(UID, agent.toString(), key()).out(), "the permitted content reads its key");
        FileTime mtime = Files.getLastModifiedTime(agent);
        String seconds = mtime.toInstant().getEpochSecond() + "." + String.format("%09d", mtime.toInstant().getNano());
        // Same inode, same size, the old mtime put back with touch -d: only ctime tells.
        Proc.Result rw = Proc.as(UID, "sh", "-c", "cat " + other + " > " + agent + " && touch -d @" + seconds + " "
                + agent);
        assertTrue(rw.ok(), rw.err());
        Proc.Result r = Proc.as(UID, agent.toString(), "-c", "200", key());
        assertRefused(r, "digest is not a permitted reader");
    }

    @Test
    void anExecOfAnotherBinaryOverItsOwnPathAfterAnOpenIsADecisionOfItsOwn() throws Exception {
        Path bin = attackerDir("bin");
        Path self = attackerBinary(bin, "agent", Files.readAllBytes(CProgram.binary("kwexec")));
        // The replacement is cat with a different digest (a zero byte appended still runs).
        byte[] cat = Files.readAllBytes(Path.of("/usr/bin/cat"));
        Path replacement = attackerBinary(bin, "replacement", java.util.Arrays.copyOf(cat, cat.length + 1));
        mount(policy("{sha256: [" + sha256(self) + "]}"));
        Proc.Result r = Proc.as(UID, self.toString(), key(), replacement.toString(), self.toString());
        assertTrue(r.out().contains("first read " + SECRET.length() + " bytes"), "the permitted program read the key: "
                + r.out() + r.err());
        assertRefused(r, "digest is not a permitted reader");
    }

    @Test
    void aTracedCallerIsRefusedAWorkloadToldApartFromItsUid() throws Exception {
        mount(policy("{exe: [/usr/bin/cat]}"));
        assertEquals(SECRET, Proc.as(UID, "cat", key()).out());
        // The permitted program, traced (by a program of the same uid that could drive it).
        Proc.Result r = Proc.as(UID, CProgram.binary("kwtraced").toString(), "/usr/bin/cat", key());
        assertRefused(r, "being traced by pid");
        // Cached or not: the tracer is read on every open of such a workload.
        assertEquals(SECRET, Proc.as(UID, "cat", key()).out());
        assertRefused(Proc.as(UID, CProgram.binary("kwtraced").toString(), "/usr/bin/cat", key()), "being traced by pid");
    }

    /**
     * A workload of a uid only: whoever may trace its process (that uid, or root) may open the key
     * itself, so the tracer is not read (the per-open /proc/TID/status it would cost).
     */
    @Test
    void aTraceChangesNothingForAWorkloadOfAUidOnly() throws Exception {
        mount(policy("{uid: [1003]}"));
        Proc.Result r = Proc.as(UID, CProgram.binary("kwtraced").toString(), "/usr/bin/cat", key());
        assertTrue(r.out().contains(SECRET), "the traced process reads, as the tracer itself could: " + r.err());
    }

    /** The cgroup v2 mount point (unified or hybrid), or empty. */
    static Optional<Path> cgroup2() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
            int dash = line.indexOf(" - ");
            if (dash > 0 && line.substring(dash + 3).startsWith("cgroup2 ")) {
                return Optional.of(Path.of(line.split(" ")[4]));
            }
        }
        return Optional.empty();
    }

    @Test
    void aPodCgroupNamedInsideADelegatedCgroupOrOwnedByTheUserIsNoPod() throws Exception {
        Optional<Path> cg = cgroup2();
        assumeTrue(cg.isPresent() && Files.isWritable(cg.get()), "needs a writable cgroup v2 hierarchy");
        String pod = UUID.randomUUID().toString();
        mount("""
                keys: {openai: {}}
                workloads:
                  - {name: pod, spiffeId: "spiffe://test.local/pod", selectors: ["k8s:pod-uid:%s"], keys: [openai]}
                """.formatted(pod));
        String name = "kw-enforce-" + System.nanoTime();
        Path delegated = cg.get().resolve(name);
        Path rootPods = cg.get().resolve("kubepods");
        boolean madeKubepods = !Files.exists(rootPods);
        Path rootPod = rootPods.resolve("pod" + pod);
        try {
            // 1. A cgroup delegated to the user (chowned, as systemd's Delegate= does): the user names a child
            //    after the pod; the old parser found "pod<uid>" anywhere in the path.
            Files.createDirectories(delegated);
            Proc.run("chown", "-R", UID + ":" + UID, delegated.toString());
            String spoof = delegated.resolve("kubepods-pod" + pod.replace('-', '_') + ".slice").toString();
            Proc.Result r = Proc.run("sh", "-c", "echo $$ > " + delegated + "/cgroup.procs && exec setpriv --reuid=" + UID
                    + " --regid=" + UID + " --clear-groups sh -c 'mkdir " + spoof + " && echo $$ > " + spoof
                    + "/cgroup.procs && cat /proc/self/cgroup >&2 && exec cat " + key() + "'");
            assertRefused(r, "no workload's selectors match");

            // 2. The runtime's own layout, but a directory owned by the user: not the runtime's.
            Files.createDirectories(rootPod);
            Proc.run("chown", UID + ":" + UID, rootPod.toString(), rootPod.resolve("cgroup.procs").toString());
            Proc.Result owned = Proc.run("sh", "-c", "echo $$ > " + rootPod + "/cgroup.procs && exec setpriv --reuid="
                    + UID + " --regid=" + UID + " --clear-groups cat " + key());
            assertRefused(owned, "no workload's selectors match");

            // 2b. The directory is root's, but its cgroup.procs was handed to the user (cgcreate -t style):
            //     the user can move any process of theirs into it, so it names no pod either.
            Proc.run("chown", "0:0", rootPod.toString());
            Proc.Result delegatedProcs = Proc.run("sh", "-c", "echo $$ > " + rootPod + "/cgroup.procs && exec setpriv"
                    + " --reuid=" + UID + " --regid=" + UID + " --clear-groups cat " + key());
            assertRefused(delegatedProcs, "no workload's selectors match");

            // 3. Control: the same layout owned by root is the pod, and its process gets the key.
            Proc.run("chown", "0:0", rootPod.toString(), rootPod.resolve("cgroup.procs").toString());
            Proc.Result legit = Proc.run("sh", "-c", "echo $$ > " + rootPod + "/cgroup.procs && exec setpriv --reuid="
                    + UID + " --regid=" + UID + " --clear-groups cat " + key());
            assertEquals(SECRET, legit.out(), "a root-owned kubepods cgroup names its pod: " + legit.err());
        } finally {
            for (Path p : new Path[] {delegated, rootPod}) {
                if (Files.exists(p)) {
                    Proc.run("sh", "-c", "find " + p + " -depth -type d -exec rmdir {} + 2>/dev/null || true");
                }
            }
            if (madeKubepods) {
                Proc.run("rmdir", rootPods.toString());
            }
        }
    }
}
