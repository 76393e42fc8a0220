package io.keywarden.tests.keyfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.FuseSession;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.tests.support.TestKeyFs;
import io.keywarden.tests.support.TestPolicies;
import io.keywarden.tests.support.KwRead;
import io.keywarden.testkit.MemoryKeySource;
import io.keywarden.delivery.AccessListener;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.TestKeys;
import io.keywarden.testkit.Await;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Two workloads read at once, 8 threads each, while their keys are swapped under them: as the
 * daemon changes keys (each new key announced before it is served, {@link KeyFs#keyIssued}), and
 * faster than an open completes (every millisecond, unannounced).
 */
class KeyFsConcurrencyIT {
    static final String POLICY = TestPolicies.ALICE_AND_BOB;
    static final int LENGTH = TestPolicies.KEY_LENGTH;

    @Test
    void tenThousandOpensPerWorkloadNeverCrossOrTear() throws Exception {
        // A new key is served on a new inode: an open that meets a newer key than its lookup found is
        // refused ESTALE, and the kernel looks up and retries once. Two workloads on one name already
        // spend that retry on each other's inode (the name's entry flips between them), so a key
        // change meeting such a retry fails the open: ESTALE, never a wrong read. As the daemon
        // changes keys (a new one every 100 ms here, announced; minutes in use) and faster than an
        // open completes (every millisecond, unannounced): never another's key, never a torn one,
        // and the only failures are opens refused ESTALE.
        // The same keys for longer than KeyFS waits before it serves them through the page cache:
        // sixteen threads, every read from the cache, never a wrong or padded one, no failure.
        for (KwRead.Stats s : readWhileSwapping(0, true)) {
            assertEquals(new KwRead.Stats(10_000, 0, 0, 0, s.medianNs(), s.p99Ns(), 0, s.meanNs(), s.wallNs()), s);
        }
        for (KwRead.Stats[] run : List.of(readWhileSwapping(100, true), readWhileSwapping(1, false))) {
            for (KwRead.Stats s : run) {
                assertEquals(0, s.bad(), "never another workload's key, never a torn one: " + s);
                assertEquals(s.errors(), s.openStale(), "the only failures are opens refused ESTALE: " + s);
                assertEquals(10_000, s.reads() + s.errors());
            }
        }
    }

    private static KwRead.Stats[] readWhileSwapping(long everyMillis, boolean announced) throws Exception {
        Requirements.rootAndFuse();
        KwRead.binary();
        Policy policy = PolicyLoader.parse(POLICY, "policy.yaml");
        MemoryKeySource keys = new MemoryKeySource();
        Instant exp = Instant.now().plus(Duration.ofHours(1));
        keys.set("alice", "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp));
        keys.set("bob", "openai", TestKeys.issued(TestKeys.random("sk-bob-", LENGTH), exp));
        KeyFs fs = TestKeyFs.of(policy, keys,
                AccessListener.NONE, Clock.systemUTC(), Duration.ofSeconds(5));
        Path mnt = Files.createTempDirectory("kw-conc-");
        java.util.concurrent.ScheduledExecutorService swapper = java.util.concurrent.Executors
                .newSingleThreadScheduledExecutor();
        AtomicInteger swaps = new AtomicInteger();
        io.keywarden.tests.support.FuseCalls calls = new io.keywarden.tests.support.FuseCalls(fs);
        try (FuseSession s = FuseSession.mount(mnt, calls.operations(), FuseSession.Options.defaults("keywarden"))) {
            fs.attach(s);
            Path file = mnt.resolve("openai/api_key");
            if (everyMillis == 0) {
                // Served once each, then past KeyFS's wait (10 s: the kernel's attributes of the
                // key's first seconds have expired twice over): the bound is the point here.
                KwRead.run(1001, null, file, 1, 10, "sk-alice-", LENGTH);
                KwRead.run(1002, null, file, 1, 10, "sk-bob-", LENGTH);
                long served = System.nanoTime();
                Await.until(Duration.ofSeconds(30), () -> System.nanoTime() - served > 10_500_000_000L,
                        () -> "KeyFS's wait for the page cache");
            }
            int readsBefore = calls.count("read");
            // The swaps, paced by a timer (one alice-and-bob swap per period).
            Runnable swap = () -> {
                for (String w : new String[] {"alice", "bob"}) {
                    io.keywarden.delivery.IssuedKey k = TestKeys.issued(TestKeys.random("sk-" + w + "-", LENGTH), exp);
                    keys.set(w, "openai", k);
                    if (announced) {   // as the lease manager: the slot's new key, then the event
                        fs.keyIssued(w, "openai", k);
                    }
                }
                swaps.incrementAndGet();
            };
            if (everyMillis > 0) {
                swapper.scheduleAtFixedRate(swap, 0, everyMillis, java.util.concurrent.TimeUnit.MILLISECONDS);
            }
            var alice = CompletableFuture.supplyAsync(() -> KwRead.run(1001, null, file, 8, 1250, "sk-alice-", LENGTH));
            var bob = CompletableFuture.supplyAsync(() -> KwRead.run(1002, null, file, 8, 1250, "sk-bob-", LENGTH));
            KwRead.Stats a = alice.get();
            KwRead.Stats b = bob.get();
            swapper.shutdownNow();
            swapper.awaitTermination(10, java.util.concurrent.TimeUnit.SECONDS);
            int reads = calls.count("read") - readsBefore;
            System.out.printf("concurrency (%s): alice %s%n             bob   %s%n"
                    + "             key swaps during the run: %d; READs asked of the daemon: %d for 20,000 opens%n",
                    everyMillis == 0 ? "the same keys, past KeyFS's wait" : "a new key every " + everyMillis + " ms"
                    + (announced ? ", announced" : ""), a, b, swaps.get(), reads);
            if (everyMillis == 0) {
                // Two workloads on one name: each lookup of one's inode drops the name's entry of the
                // other's, whose inode the kernel may then forget with its pages (a READ again).
                assertTrue(reads < 2_000, "read from the page cache: " + reads + " READs for 20,000 opens (" + calls
                        + ")");
            }
            Await.until(Duration.ofSeconds(10), () -> fs.openHandles() == 0, () -> "handles left open: "
                    + fs.openHandles());
            return new KwRead.Stats[] {a, b};
        } finally {
            swapper.shutdownNow();
            Files.deleteIfExists(mnt);
        }
    }
}
