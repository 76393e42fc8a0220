package io.keywarden.tests.keyfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.testkit.ManualClock;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.FuseSession;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.tests.support.FuseCalls;
import io.keywarden.testkit.MemoryKeySource;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.RecordingListener;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.TestKeyFs;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * api_key through the page cache: an open is one round trip once the key is cached, and the cache
 * never serves a key it should not — a new key is served at once (on a new inode), a descriptor
 * opened before a change never reads a later key, a revoked key's pages are gone when the revoke
 * returns, and workloads alternating on the name each read their own. Real processes of two uids;
 * the daemon's side counted by opcode.
 */
class KeyFsPageCacheIT {
    static final int ALICE = 1001;
    static final int BOB = 1002;
    static final String POLICY = io.keywarden.tests.support.TestPolicies.ALICE_AND_BOB;
    /** A reader that opens once, then reads the same descriptor again (pread at 0) at each line on stdin. */
    static final String HOLDER = """
            import os, sys
            fd = os.open(sys.argv[1], os.O_RDONLY)
            print("FIRST " + os.read(fd, 100).decode(), flush=True)
            for line in sys.stdin:
                try:
                    print("READ " + os.pread(fd, 100, 0).decode(), flush=True)
                except OSError as e:
                    print("ERRNO %d" % e.errno, flush=True)
            """;

    Path mnt;
    FuseSession session;
    MemoryKeySource keys;
    ManualClock clock;
    KeyFs fs;
    FuseCalls calls;

    static IssuedKey key(String secret, Instant expires) {
        return new IssuedKey(secret.getBytes(StandardCharsets.UTF_8), expires, "lease-" + secret.hashCode());
    }

    @BeforeEach
    void mount() throws Exception {
        Requirements.rootAndFuse();
        clock = new ManualClock(Instant.now());
        keys = new MemoryKeySource();
        Instant exp = clock.instant().plus(Duration.ofMinutes(5));
        keys.set("alice", "openai", key("sk-alice-0001", exp));
        keys.set("bob", "openai", key("sk-bob-0002", exp));
        fs = TestKeyFs.of(PolicyLoader.parse(POLICY, "policy.yaml"), keys, new RecordingListener(), clock,
                Duration.ofSeconds(3));
        calls = new FuseCalls(fs);
        mnt = Files.createTempDirectory("kw-pagecache-");
        session = FuseSession.mount(mnt, calls.operations(), FuseSession.Options.defaults("keywarden"));
        fs.attach(session);
    }

    @AfterEach
    void unmount() throws Exception {
        if (session != null) {
            session.close();
        }
        if (mnt != null) {
            Files.deleteIfExists(mnt);
        }
    }

    int count(String op) {
        return calls.count(op);
    }

    String api() {
        return mnt.resolve("openai/api_key").toString();
    }

    @Test
    void onceCachedAnOpenIsOneRoundTripAndEveryOpenIsStillDecided() {
        assertEquals("sk-alice-0001", Proc.as(ALICE, "cat", api()).out());
        int direct = count("read");
        assertEquals("sk-alice-0001", Proc.as(ALICE, "cat", api()).out());
        assertTrue(count("read") > direct, "a key's first seconds are read from the daemon (direct I/O): " + calls);
        // Once its length outlived the kernel's attributes (KeyFS's clock moved on), through the cache.
        clock.advance(Duration.ofSeconds(11));
        assertEquals("sk-alice-0001", Proc.as(ALICE, "cat", api()).out());
        int reads = count("read");
        int opens = count("open");
        int getattrs = count("getattr");
        for (int i = 0; i < 10; i++) {
            assertEquals("sk-alice-0001", Proc.as(ALICE, "cat", api()).out());
        }
        System.out.printf("page cache: 10 opens of a cached key asked the daemon %s%n", calls);
        assertEquals(reads, count("read"), "no READ once the key is cached: " + calls);
        assertEquals(opens + 10, count("open"), "each open still asks the daemon: " + calls);
        assertTrue(count("getattr") - getattrs <= 2, "no attribute round trip per open: " + calls);
        // Still decided per open: a refused caller gets nothing, cached or not.
        Proc.Result other = Proc.as(4242, "cat", api());
        assertTrue(other.err().contains("Permission denied"), other.err());
        assertFalse(other.out().contains("sk-"));
    }

    @Test
    void workloadsAlternatingOnTheNameEachReadTheirOwnKey() {
        for (int i = 0; i < 6; i++) {
            assertEquals("sk-alice-0001", Proc.as(ALICE, "cat", api()).out());
            assertEquals("sk-bob-0002", Proc.as(BOB, "cat", api()).out());
            // sendfile reads through the page cache too.
            assertEquals("sk-bob-0002", KeyFsIT.sendfile(BOB, api()));
            assertEquals("sk-alice-0001", KeyFsIT.sendfile(ALICE, api()));
        }
    }

    /**
     * A reader holding a descriptor opened (and read) before {@code steps}: what it reads again after
     * each step.
     */
    private java.util.List<String> heldAcross(Runnable... steps) throws Exception {
        Process p = new ProcessBuilder("setpriv", "--reuid=" + ALICE, "--regid=" + ALICE, "--clear-groups",
                "/usr/bin/python3", "-c", HOLDER, api()).redirectErrorStream(true).start();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
             Writer in = new java.io.OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8)) {
            assertEquals("FIRST sk-alice-0001", out.readLine());
            in.write("again\n");
            in.flush();
            assertEquals("READ sk-alice-0001", out.readLine(), "a held descriptor reads on while nothing changed");
            java.util.List<String> seen = new java.util.ArrayList<>();
            for (Runnable step : steps) {
                step.run();
                in.write("again\n");
                in.flush();
                seen.add(out.readLine());
            }
            return seen;
        } finally {
            p.destroy();
            p.waitFor();
        }
    }

    @Test
    void aNewKeyIsServedAtOnceAndADescriptorOpenedBeforeNeverReadsIt() throws Exception {
        assertEquals("sk-alice-0001", Proc.as(ALICE, "cat", api()).out());
        String inoBefore = Proc.as(ALICE, "stat", "-c", "%i", api()).out();
        IssuedKey next = key("sk-alice-0005", clock.instant().plus(Duration.ofMinutes(5)));
        String held = heldAcross(() -> {
            keys.set("alice", "openai", next);
            fs.keyIssued("alice", "openai", next);
            // At once: no wait for the kernel to drop the old inode's pages.
            assertEquals("sk-alice-0005", Proc.as(ALICE, "cat", api()).out());
            assertEquals("sk-alice-0005", KeyFsIT.sendfile(ALICE, api()));
        }).get(0);
        assertFalse(held.contains("sk-alice-0005"), "the held descriptor never reads the next key: " + held);
        assertTrue(held.equals("READ sk-alice-0001") || held.equals("ERRNO 116"), held);
        assertNotEquals(inoBefore, Proc.as(ALICE, "stat", "-c", "%i", api()).out(), "a new key, a new inode");
    }

    @Test
    void aRevokedKeysPagesAreGoneWhenTheRevokeReturnsAndTheNextKeyStaysOutOfReach() throws Exception {
        IssuedKey first = key("sk-alice-0001", clock.instant().plus(Duration.ofMinutes(5)));
        IssuedKey next = key("sk-alice-0009", clock.instant().plus(Duration.ofMinutes(5)));
        java.util.List<String> held = heldAcross(() -> {
            keys.fail("alice", "openai", "revoked");
            fs.keyGone("alice", "openai", first.fingerprint());
            Proc.Result r = Proc.as(ALICE, "cat", api());
            assertFalse(r.out().contains("sk-"), "nothing served while there is no key: " + r.out());
        }, () -> {
            keys.set("alice", "openai", next);
            fs.keyIssued("alice", "openai", next);
            assertEquals("sk-alice-0009", Proc.as(ALICE, "cat", api()).out(), "a new open gets the new key");
        });
        assertEquals(java.util.List.of("ERRNO 116", "ERRNO 116"), held, "after the revoke returned, the descriptor held"
                + " across it reads nothing (ESTALE), neither the revoked key nor the next one");
    }
}
