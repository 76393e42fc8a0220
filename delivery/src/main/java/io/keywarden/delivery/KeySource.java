package io.keywarden.delivery;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.policy.Workload;
import java.util.concurrent.CompletionStage;

/**
 * "Give me the current key for this workload and key name" — what delivery asks of issuance.
 * Implemented by the lease lifecycle; KeyFS never issues or caches keys itself.
 */
public interface KeySource {

    /**
     * The current, unexpired key, issued first when there is none. Completes exceptionally with
     * {@link KeyUnavailableException} when it cannot be had. {@code opener} is the process that
     * will receive it, so the lifecycle can track who holds which lease.
     */
    CompletionStage<IssuedKey> current(Workload workload, String key, ProcessInfo opener);

    /** The state behind the {@code status} file, without issuing anything. */
    LeaseStatus status(Workload workload, String key);
}
