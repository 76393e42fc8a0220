package io.keywarden.tests.support;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeySource;
import io.keywarden.delivery.KeyUnavailableException;
import io.keywarden.policy.Workload;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/** Keys held in memory per (workload, key); a test sets, swaps, delays or fails them. */
public final class MemoryKeySource implements KeySource {
    private final Map<String, CompletableFuture<IssuedKey>> keys = new ConcurrentHashMap<>();
    private final Map<String, String> errors = new ConcurrentHashMap<>();
    public final AtomicInteger requests = new AtomicInteger();

    private static String id(String workload, String key) {
        return workload + "/" + key;
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
        CompletableFuture<IssuedKey> f = keys.get(id(workload.name(), key));
        return f != null ? f : CompletableFuture.failedFuture(new KeyUnavailableException("no key set"));
    }

    @Override
    public io.keywarden.delivery.LeaseStatus status(Workload workload, String key) {
        String e = errors.get(id(workload.name(), key));
        return e == null ? io.keywarden.delivery.LeaseStatus.OK : new io.keywarden.delivery.LeaseStatus.Failing(e);
    }
}
