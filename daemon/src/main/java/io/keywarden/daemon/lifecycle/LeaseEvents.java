package io.keywarden.daemon.lifecycle;

import io.keywarden.issuer.Lease;
import io.keywarden.policy.Workload;

/** What happens to leases, for the ledger, metrics and tmpfs delivery. Default: nothing. */
public interface LeaseEvents {
    LeaseEvents NONE = new LeaseEvents() {
    };

    /** {@code previous} is null for a first issuance, else the lease this one refreshes. */
    default void issued(Workload w, String key, Lease lease, Lease previous) {
    }

    /** {@code current} is null when a first issuance failed, else the lease a failed refresh was to replace. */
    default void issueFailed(Workload w, String key, Lease current, String reason, boolean retryable) {
    }

    /** {@code code} is the reason's class (metrics), {@code reason} its words (ledger). */
    default void revoked(Workload w, String key, Lease lease, RevokeReason code, String reason) {
    }

    default void expired(Workload w, String key, Lease lease) {
    }

    /**
     * Revoking {@code lease} failed ({@code error}) on attempt {@code attempt}; {@code retryAt} is when
     * it is tried again, or null when it is not (the key then lives at the issuer until it expires).
     */
    default void revokeFailed(Workload w, String key, Lease lease, String error, int attempt, java.time.Instant retryAt) {
    }

    /** Tells each of {@code all}, in order. */
    static LeaseEvents of(LeaseEvents... all) {
        return new LeaseEvents() {
            @Override
            public void issued(Workload w, String key, Lease lease, Lease previous) {
                for (LeaseEvents e : all) {
                    e.issued(w, key, lease, previous);
                }
            }

            @Override
            public void issueFailed(Workload w, String key, Lease current, String reason, boolean retryable) {
                for (LeaseEvents e : all) {
                    e.issueFailed(w, key, current, reason, retryable);
                }
            }

            @Override
            public void revoked(Workload w, String key, Lease lease, RevokeReason code, String reason) {
                for (LeaseEvents e : all) {
                    e.revoked(w, key, lease, code, reason);
                }
            }

            @Override
            public void expired(Workload w, String key, Lease lease) {
                for (LeaseEvents e : all) {
                    e.expired(w, key, lease);
                }
            }

            @Override
            public void revokeFailed(Workload w, String key, Lease lease, String error, int attempt,
                                     java.time.Instant retryAt) {
                for (LeaseEvents e : all) {
                    e.revokeFailed(w, key, lease, error, attempt, retryAt);
                }
            }
        };
    }
}
