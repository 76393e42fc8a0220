package io.keywarden.daemon.runtime;

import io.keywarden.issuer.Lease;
import io.keywarden.daemon.lifecycle.LeaseEvents;
import io.keywarden.delivery.TmpfsDelivery;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Keeps tmpfs delivery in step with the leases: publish on issue, withdraw on expiry, wipe on revoke. */
public final class TmpfsPublisher implements LeaseEvents {
    private static final Logger LOG = LoggerFactory.getLogger(TmpfsPublisher.class);
    private final TmpfsDelivery tmpfs;
    private final Map<String, String> published = new ConcurrentHashMap<>();

    public TmpfsPublisher(TmpfsDelivery tmpfs) {
        this.tmpfs = tmpfs;
    }

    @Override
    public void issued(Workload w, String key, Lease lease, Lease previous) {
        try {
            tmpfs.publish(w, key, lease.key(), lease.revocable());
            published.put(w.name() + "/" + key, lease.leaseId());
        } catch (IOException e) {
            LOG.error("tmpfs delivery of {}/{} ({}) failed: {}", w.name(), key, lease.key().fingerprint(), e.getMessage());
        }
    }

    @Override
    public void issueFailed(Workload w, String key, Lease current, String reason, boolean retryable) {
        LOG.warn("issuing {}/{} failed: {}", w.name(), key, reason);
    }

    @Override
    public void expired(Workload w, String key, Lease lease) {
        try {
            tmpfs.withdraw(w, key, "key expired at " + lease.expiresAt() + " and was not refreshed");
        } catch (IOException e) {
            LOG.error("withdrawing expired key {}/{} failed: {}", w.name(), key, e.getMessage());
        }
    }

    @Override
    public void revoked(Workload w, String key, Lease lease, io.keywarden.daemon.lifecycle.RevokeReason code,
                        String reason) {
        if (published.remove(w.name() + "/" + key, lease.leaseId())) {
            try {
                tmpfs.wipe(w, key);
            } catch (IOException e) {
                LOG.error("wiping revoked key {}/{} failed: {}", w.name(), key, e.getMessage());
            }
        }
    }
}
