package io.keywarden.testkit;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeySource;
import io.keywarden.delivery.KeyUnavailableException;
import io.keywarden.delivery.LeaseStatus;
import io.keywarden.linux.Secret;
import io.keywarden.policy.Workload;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The tests' key source, for front ends (KeyFS, tmpfs, the gateway) tested apart from the lease
 * core: keys held in memory per (workload, key) that a test sets, swaps, delays or fails
 * ({@link #set}, {@link #pending}, {@link #fail}); or one key for every workload
 * ({@link #serveAll}), each call with its own copy (a consumer may wipe what it gets), failing
 * as an issuer would when told ({@link #failAll}). Counts the requests it answers.
 */
public final class MemoryKeySource implements KeySource {
    private final Map<String, CompletableFuture<IssuedKey>> keys = new ConcurrentHashMap<>();
    private final Map<String, String> errors = new ConcurrentHashMap<>();
    private volatile String everyKey;
    private volatile String everyFailure;
    public final AtomicInteger requests = new AtomicInteger();

    private static String id(String workload, String key) {
        return workload + "/" + key;
    }

    /** Serves {@code key} to every (workload, key) not set otherwise, a fresh copy each time, valid 5 minutes. */
    public MemoryKeySource serveAll(String key) {
        everyKey = key;
        return this;
    }

    /** From now on every request fails with {@code why} (null: serve again). */
    public void failAll(String why) {
        everyFailure = why;
    }

    public void set(String workload, String key, IssuedKey k) {
        errors.remove(id(workload, key));
        keys.put(id(workload, key), CompletableFuture.completedFuture(k));
    }

    /** The next opens wait until the returned future is completed. */
    public CompletableFuture<IssuedKey> pending(String workload, String key) {
        CompletableFuture<IssuedKey> f = new CompletableFuture<>();
        keys.put(id(workload, key), f);
        return f;
    }

    public void fail(String workload, String key, String why) {
        errors.put(id(workload, key), why);
        keys.put(id(workload, key), CompletableFuture.failedFuture(new KeyUnavailableException(why)));
    }

    @Override
    public CompletionStage<IssuedKey> current(Workload workload, String key, ProcessInfo opener) {
        requests.incrementAndGet();
        String failing = everyFailure;
        if (failing != null) {
            return CompletableFuture.failedFuture(new KeyUnavailableException(failing));
        }
        CompletableFuture<IssuedKey> f = keys.get(id(workload.name(), key));
        if (f != null) {
            return f;
        }
        String all = everyKey;
        return all != null ? CompletableFuture.completedFuture(new IssuedKey(Secret.copyOf(all.getBytes(
                StandardCharsets.US_ASCII)), Instant.now().plusSeconds(300), "memory-lease"))
                : CompletableFuture.failedFuture(new KeyUnavailableException("no key set"));
    }

    @Override
    public LeaseStatus status(Workload workload, String key) {
        String e = everyFailure != null ? everyFailure : errors.get(id(workload.name(), key));
        return e == null ? LeaseStatus.OK : new LeaseStatus.Failing(e);
    }
}
