package io.keywarden.daemon.dev;

import io.keywarden.daemon.issuer.Lease;
import io.keywarden.daemon.lifecycle.LeaseEvents;
import io.keywarden.policy.Workload;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Lease events as log lines (fingerprints only), then passed on. */
public final class LoggingEvents implements LeaseEvents {
    private static final Logger LOG = LoggerFactory.getLogger("io.keywarden.leases");
    private final LeaseEvents next;

    public LoggingEvents(LeaseEvents next) {
        this.next = next;
    }

    @Override
    public void issued(Workload w, String key, Lease lease, Lease previous) {
        LOG.info("{} {}/{}: {} lease {} until {}", previous == null ? "issued" : "refreshed", w.name(), key,
                lease.key().fingerprint(), lease.leaseId(), lease.expiresAt());
        next.issued(w, key, lease, previous);
    }

    @Override
    public void issueFailed(Workload w, String key, String reason, boolean retryable) {
        LOG.warn("issuing {}/{} failed ({}): {}", w.name(), key, retryable ? "will retry" : "not retryable", reason);
        next.issueFailed(w, key, reason, retryable);
    }

    @Override
    public void revoked(Workload w, String key, Lease lease, String reason) {
        LOG.info("revoked {}/{}: {} lease {} ({})", w.name(), key, lease.key().fingerprint(), lease.leaseId(), reason);
        next.revoked(w, key, lease, reason);
    }

    @Override
    public void expired(Workload w, String key, Lease lease) {
        LOG.warn("expired {}/{}: {} lease {} was not refreshed in time; serving stopped", w.name(), key,
                lease.key().fingerprint(), lease.leaseId());
        next.expired(w, key, lease);
    }
}
