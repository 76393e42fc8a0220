package io.keywarden.daemon.runtime;

import io.keywarden.issuer.Lease;
import io.keywarden.daemon.lifecycle.LeaseEvents;
import io.keywarden.policy.Workload;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Lease events as log lines (fingerprints only), then passed on. */
public final class LoggingEvents implements LeaseEvents {
    private static final Logger LOG = LoggerFactory.getLogger("io.keywarden.leases");

    @Override
    public void issued(Workload w, String key, Lease lease, Lease previous) {
        LOG.info("{} {}/{}: {} lease {} until {}", previous == null ? "issued" : "refreshed", w.name(), key,
                lease.key().fingerprint(), lease.leaseId(), lease.expiresAt());
    }

    @Override
    public void issueFailed(Workload w, String key, Lease current, String reason, boolean retryable) {
        LOG.warn("issuing {}/{} failed ({}): {}", w.name(), key, retryable ? "will retry" : "not retryable", reason);
    }

    @Override
    public void revoked(Workload w, String key, Lease lease, io.keywarden.daemon.lifecycle.RevokeReason code,
                        String reason) {
        LOG.info("revoked {}/{}: {} lease {} ({})", w.name(), key, lease.key().fingerprint(), lease.leaseId(), reason);
    }

    @Override
    public void expired(Workload w, String key, Lease lease) {
        LOG.warn("expired {}/{}: {} lease {} was not refreshed in time; serving stopped", w.name(), key,
                lease.key().fingerprint(), lease.leaseId());
    }
}
