package io.keywarden.daemon.lifecycle;

import io.keywarden.issuer.Lease;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The leases whose revoke the issuer has not taken: each is listed from its first failed attempt
 * until a later attempt succeeds, or until the credential can no longer be used anywhere — the
 * provider's own expiry when the issuer knows it ({@link Lease#providerExpiresAt()}), otherwise the
 * lease's end (after which the issuer — OpenBao's expiration manager — owns the revoke). What
 * {@code keywarden status --unrevoked} lists and {@code keywarden_keys_unrevoked} counts.
 */
public final class Unrevoked {
    /** Beyond this many, the oldest entry is dropped (its ledger records remain). */
    static final int MAX = 10_000;

    /**
     * One lease whose revoke failed; {@code nextTry} null when no further attempt is scheduled;
     * {@code code} and {@code reason} why it was being revoked (what its {@code key.revoked} will say).
     */
    public record Entry(String workload, String spiffeId, String key, String leaseId, String fingerprint,
                        String providerKeyId, String issuer, int attempts, String lastError, Instant firstFailure,
                        Instant nextTry, Instant leaseEnd, Optional<Instant> providerExpiresAt, RevokeReason code,
                        String reason) {
        /** Until when the credential may still work somewhere. */
        public Instant liveUntil() {
            return providerExpiresAt.filter(p -> p.isAfter(leaseEnd)).orElse(leaseEnd);
        }

        /** The lease to revoke (its key's bytes are gone: a revoke needs only the lease). */
        public Lease lease() {
            return new Lease(io.keywarden.delivery.IssuedKey.wiped(fingerprint, leaseEnd, leaseId), firstFailure, false,
                    Optional.ofNullable(providerKeyId), issuer, true, providerExpiresAt);
        }
    }

    private final Map<String, Entry> entries = new ConcurrentHashMap<>();
    private final Clock clock;

    public Unrevoked(Clock clock) {
        this.clock = clock;
    }

    void failed(io.keywarden.policy.Workload w, String key, Lease lease, RevokeReason code, String reason, String error,
                int attempt, Instant nextTry) {
        Instant now = clock.instant();
        entries.compute(lease.leaseId(), (id, old) -> new Entry(w.name(), w.spiffeId().toString(), key, id,
                lease.key().fingerprint(), lease.providerKeyId().orElse(null), lease.issuer(), attempt, error,
                old == null ? now : old.firstFailure(), nextTry, lease.expiresAt(), lease.providerExpiresAt(), code,
                reason));
        trim();
    }

    void adopt(Entry e) {
        entries.put(e.leaseId(), e);
        trim();
    }

    private void trim() {
        if (entries.size() > MAX) {
            entries.values().stream().min(Comparator.comparing(Entry::firstFailure))
                    .ifPresent(e -> entries.remove(e.leaseId(), e));
        }
    }

    void revoked(String leaseId) {
        entries.remove(leaseId);
    }

    /** The entries whose credential may still work, soonest failure first. */
    public List<Entry> list() {
        Instant now = clock.instant();
        entries.values().removeIf(e -> !e.liveUntil().isAfter(now));
        List<Entry> out = new ArrayList<>(entries.values());
        out.sort(Comparator.comparing(Entry::firstFailure));
        return out;
    }

    public int count() {
        return list().size();
    }
}
