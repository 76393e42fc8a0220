package io.keywarden.tests.keyfs;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.FuseSession;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.tests.support.TestKeyFs;
import io.keywarden.tests.support.TestPolicies;
import io.keywarden.tests.support.KwRead;
import io.keywarden.tests.support.MemoryKeySource;
import io.keywarden.delivery.AccessListener;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.TestKeys;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Two workloads read at once, 8 threads each, while their keys are swapped under them. */
class KeyFsConcurrencyIT {
    static final String POLICY = TestPolicies.ALICE_AND_BOB;
    static final int LENGTH = TestPolicies.KEY_LENGTH;

    @Test
    void tenThousandOpensPerWorkloadNeverCrossOrTear() throws Exception {
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
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger swaps = new AtomicInteger();
        try (FuseSession s = FuseSession.mount(mnt, fs, FuseSession.Options.defaults("keywarden"))) {
            Thread swapper = new Thread(() -> {
                while (!stop.get()) {
                    keys.set("alice", "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp));
                    keys.set("bob", "openai", TestKeys.issued(TestKeys.random("sk-bob-", LENGTH), exp));
                    swaps.incrementAndGet();
                    try {
                        Thread.sleep(1);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
            swapper.start();
            Path file = mnt.resolve("openai/api_key");
            var alice = CompletableFuture.supplyAsync(() -> KwRead.run(1001, null, file, 8, 1250, "sk-alice-", LENGTH));
            var bob = CompletableFuture.supplyAsync(() -> KwRead.run(1002, null, file, 8, 1250, "sk-bob-", LENGTH));
            KwRead.Stats a = alice.get();
            KwRead.Stats b = bob.get();
            stop.set(true);
            swapper.join();
            System.out.printf("concurrency: alice %s%n             bob   %s%n             key swaps during the run: %d%n",
                    a, b, swaps.get());
            assertEquals(new KwRead.Stats(10_000, 0, 0, 0, a.medianNs(), a.p99Ns()), a);
            assertEquals(new KwRead.Stats(10_000, 0, 0, 0, b.medianNs(), b.p99Ns()), b);
            assertEquals(0, fs.openHandles(), "every open was released");
        } finally {
            stop.set(true);
            Files.deleteIfExists(mnt);
        }
    }
}
