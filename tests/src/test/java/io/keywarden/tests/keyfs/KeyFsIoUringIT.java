package io.keywarden.tests.keyfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.FuseSession;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.testkit.Await;
import io.keywarden.testkit.ManualClock;
import io.keywarden.testkit.MemoryKeySource;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.RecordingListener;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.TestKeyFs;
import io.keywarden.tests.support.TestPolicies;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * KeyFS over FUSE io_uring (the kernel's {@code enable_uring}, set by this test and put back):
 * requests come through the rings, every open is still decided per caller, an answer given later
 * by another thread (an issuance) reaches the reader, and without the kernel's offer, or with it
 * turned off, the session stays on /dev/fuse reads. Real processes of other uids.
 */
class KeyFsIoUringIT {
    static final Path PARAM = Path.of("/sys/module/fuse/parameters/enable_uring");

    io.keywarden.tests.support.FuseUringSwitch uring;
    Path mnt;
    FuseSession session;
    MemoryKeySource keys;
    ManualClock clock;
    KeyFs fs;

    static IssuedKey key(String secret) {
        return new IssuedKey(secret.getBytes(StandardCharsets.UTF_8), Instant.now().plus(Duration.ofMinutes(5)),
                "lease-" + secret.hashCode());
    }

    @BeforeEach
    void enable() throws Exception {
        Requirements.rootAndFuse();
        uring = io.keywarden.tests.support.FuseUringSwitch.on();
        clock = new ManualClock(Instant.now());
        keys = new MemoryKeySource();
        keys.set("alice", "openai", key("sk-alice-0001"));
        keys.set("bob", "openai", key("sk-bob-0002"));
        fs = TestKeyFs.of(PolicyLoader.parse(TestPolicies.ALICE_AND_BOB, "policy.yaml"), keys, new RecordingListener(),
                clock, Duration.ofSeconds(10));
        mnt = Files.createTempDirectory("kw-uring-");
    }

    void mount(FuseSession.Options o) throws Exception {
        session = FuseSession.mount(mnt, fs, o);
        fs.attach(session);
    }

    @AfterEach
    void restore() throws Exception {
        try {
            if (session != null) {
                session.close();
            }
            if (mnt != null) {
                Files.deleteIfExists(mnt);
            }
        } finally {
            if (uring != null) {
                uring.close();
            }
        }
    }

    String api() {
        return mnt.resolve("openai/api_key").toString();
    }

    static long ringThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("fuse-ring-")).count();
    }

    @Test
    void keysAreServedThroughTheRingsAndEveryOpenIsStillDecided() throws Exception {
        mount(FuseSession.Options.defaults("keywarden"));
        assertTrue(session.servesOverIoUring(), "the kernel offered io_uring and every ring registered");
        long before = session.ioUringRequests();
        for (int i = 0; i < 5; i++) {
            assertEquals("sk-alice-0001", Proc.as(1001, "cat", api()).out());
            assertEquals("sk-bob-0002", Proc.as(1002, "cat", api()).out());
        }
        Proc.Result other = Proc.as(4242, "cat", api());
        assertTrue(other.err().contains("Permission denied"), other.err());
        assertFalse(other.out().contains("sk-"));
        // Past its first seconds the key is read through the page cache: one OPEN an open, still decided.
        clock.advance(Duration.ofSeconds(11));
        assertEquals("sk-alice-0001", Proc.as(1001, "cat", api()).out());
        assertEquals("sk-bob-0002", Proc.as(1002, "cat", api()).out());
        // A new key is served at once.
        IssuedKey next = key("sk-alice-0003");
        keys.set("alice", "openai", next);
        fs.keyIssued("alice", "openai", next);
        assertEquals("sk-alice-0003", Proc.as(1001, "cat", api()).out());
        long served = session.ioUringRequests() - before;
        System.out.printf("io_uring: %d requests served through the rings for 14 cats%n", served);
        assertTrue(served >= 14, "every open went through a ring: " + served);
    }

    /** {@code file} of /proc/self/task/TID for each of this mount's ring threads (ones that ended meanwhile left out). */
    static java.util.List<String> ofRingThreads(String file) throws java.io.IOException {
        java.util.List<String> texts = new java.util.ArrayList<>();
        try (var tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                try {
                    if (Files.readString(t.resolve("comm")).startsWith("fuse-ring-kw-ur")) {
                        texts.add(Files.readString(t.resolve(file)));
                    }
                } catch (java.io.IOException gone) {
                    // a thread that ended meanwhile
                }
            }
        }
        return texts;
    }

    /**
     * Each queue's thread runs on the CPU whose requests the kernel queues on its ring (as libfuse
     * binds them): unbound, the threads drifted onto each other's CPU and every answer woke the other.
     */
    @Test
    void eachRingThreadIsBoundToACpuOfItsOwn() throws Exception {
        int cpus = Runtime.getRuntime().availableProcessors();
        String mine = Files.readString(Path.of("/proc/self/status")).lines().filter(l -> l.startsWith("Cpus_allowed_list:"))
                .findFirst().orElse("").replaceAll(".*:\\s*", "");
        String possible = Files.readString(Path.of("/sys/devices/system/cpu/possible")).trim();
        // A ring per possible CPU; one whose CPU this process may not use (a cpuset) or that is offline stays unbound.
        org.junit.jupiter.api.Assumptions.assumeTrue(mine.equals(cpus == 1 ? "0" : "0-" + (cpus - 1))
                && possible.equals(mine), "this process may not run on every possible CPU (" + mine + " of " + possible
                + "): some rings stay unbound there");
        mount(FuseSession.Options.defaults("keywarden"));
        assertTrue(session.servesOverIoUring());
        java.util.List<String> allowed = new java.util.ArrayList<>();
        for (String status : ofRingThreads("status")) {
            status.lines().filter(l -> l.startsWith("Cpus_allowed_list:")).findFirst()
                    .ifPresent(l -> allowed.add(l.substring(l.indexOf(':') + 1).trim()));
        }
        assertTrue(allowed.size() >= cpus, "a ring thread per CPU: " + allowed);
        assertTrue(allowed.stream().allMatch(c -> c.matches("\\d+")), "each allowed one CPU only: " + allowed);
        java.util.Set<String> expected = new java.util.HashSet<>();
        for (int i = 0; i < cpus; i++) {
            expected.add(Integer.toString(i));
        }
        assertEquals(expected, new java.util.HashSet<>(allowed), "each bound to one CPU, a different one");
    }

    /**
     * Each queue's thread is SCHED_BATCH (policy 3 in its stat's 41st field): woken by a reader's
     * request it does not preempt that reader, which the other CPU then pulled away (FuseUring).
     */
    @Test
    void eachRingThreadDoesNotPreemptItsReaders() throws Exception {
        mount(FuseSession.Options.defaults("keywarden"));
        assertTrue(session.servesOverIoUring());
        java.util.List<String> policies = new java.util.ArrayList<>();
        for (String stat : ofRingThreads("stat")) {
            policies.add(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[38]);
        }
        assertTrue(policies.size() >= Runtime.getRuntime().availableProcessors(), "a ring thread per CPU: " + policies);
        assertTrue(policies.stream().allMatch("3"::equals), "each SCHED_BATCH (3): " + policies);
        assertEquals("sk-alice-0001", Proc.as(1001, "cat", api()).out());
    }

    @Test
    void anAnswerGivenLaterByAnotherThreadReachesTheReader() throws Exception {
        mount(FuseSession.Options.defaults("keywarden"));
        assertTrue(session.servesOverIoUring());
        CompletableFuture<IssuedKey> issuing = keys.pending("alice", "openai");
        int asked = keys.requests.get();
        CompletableFuture<Proc.Result> reader = CompletableFuture.supplyAsync(() -> Proc.as(1001, "cat", api()));
        Await.until(Duration.ofSeconds(10), () -> keys.requests.get() > asked, () -> "the open never asked for the key");
        assertFalse(reader.isDone(), "the reader waits for the issuance");
        assertEquals(1, session.unansweredRequests(), "the waiting open is kept where an INTERRUPT finds it");
        // Completed on this thread: the answer is handed to the ring's thread and committed there.
        issuing.complete(key("sk-alice-0009"));
        assertEquals("sk-alice-0009", reader.get().out());
        // Answered later, from another thread: no longer kept (nor are the opens answered at once).
        assertEquals(0, session.unansweredRequests());
        for (int i = 0; i < 3; i++) {
            assertEquals("sk-alice-0009", Proc.as(1001, "cat", api()).out());
        }
        assertEquals(0, session.unansweredRequests());
    }

    @Test
    void offWhenTurnedOffOrNotOfferedAndStopsCleanly() throws Exception {
        mount(FuseSession.Options.defaults("keywarden").withIoUring(false));
        assertFalse(session.servesOverIoUring());
        assertEquals("sk-alice-0001", Proc.as(1001, "cat", api()).out());
        assertEquals(0, session.ioUringRequests());
        session.close();
        session = null;

        Files.writeString(PARAM, "N");
        mount(FuseSession.Options.defaults("keywarden"));
        assertFalse(session.servesOverIoUring(), "the kernel does not offer io_uring with enable_uring off");
        assertEquals("sk-bob-0002", Proc.as(1002, "cat", api()).out());
        assertEquals(0, session.ioUringRequests());
        session.close();
        session = null;

        Files.writeString(PARAM, "Y");
        mount(FuseSession.Options.defaults("keywarden"));
        assertTrue(session.servesOverIoUring());
        assertTrue(ringThreads() > 0);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> session.pause(Duration.ofSeconds(1)));
        assertTrue(e.getMessage().contains("restart"), e.getMessage());
        assertEquals("sk-alice-0001", Proc.as(1001, "cat", api()).out(), "still serving after the refused pause");
        session.close();
        session = null;
        Await.until(Duration.ofSeconds(10), () -> ringThreads() == 0, () -> ringThreads() + " ring threads left");
    }
}
