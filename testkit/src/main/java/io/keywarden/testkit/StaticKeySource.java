package io.keywarden.testkit;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeySource;
import io.keywarden.delivery.LeaseStatus;
import io.keywarden.linux.Secret;
import io.keywarden.policy.Workload;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * A key source that serves one key to every workload, or fails as an issuer would ({@link #fail}):
 * for front-end tests that are not about the lease core. Each call gets its own copy of the key.
 */
public final class StaticKeySource implements KeySource {
    private final String key;
    private volatile String failure;

    public StaticKeySource(String key) {
        this.key = key;
    }

    /** From now on every request fails with {@code why} (null: serve again). */
    public void fail(String why) {
        failure = why;
    }

    @Override
    public CompletionStage<IssuedKey> current(Workload workload, String keyName, ProcessInfo opener) {
        String why = failure;
        return why != null ? CompletableFuture.failedFuture(new IllegalStateException(why))
                : CompletableFuture.completedFuture(new IssuedKey(Secret.copyOf(key.getBytes(StandardCharsets.US_ASCII)),
                Instant.now().plusSeconds(300), "static-lease"));
    }

    @Override
    public LeaseStatus status(Workload workload, String keyName) {
        return failure != null ? new LeaseStatus.Failing(failure) : new LeaseStatus.Ok(true);
    }
}
