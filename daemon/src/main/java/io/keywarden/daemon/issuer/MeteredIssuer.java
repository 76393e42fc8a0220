package io.keywarden.daemon.issuer;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;
import java.time.Duration;

/** Times every issuer call into {@code keywarden_issuer_request_seconds{issuer,op}}. */
public final class MeteredIssuer extends ForwardingIssuer {
    private final Metrics metrics;

    public MeteredIssuer(Issuer issuer, Metrics metrics) {
        super(issuer);
        this.metrics = metrics;
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        long t0 = System.nanoTime();
        try {
            return delegate.issue(workload, key, opener);
        } finally {
            metrics.issuerRequest(delegate.name(), "issue", Duration.ofNanos(System.nanoTime() - t0));
        }
    }

    @Override
    public void revoke(Lease lease) throws IssuerException {
        long t0 = System.nanoTime();
        try {
            delegate.revoke(lease);
        } finally {
            metrics.issuerRequest(delegate.name(), "revoke", Duration.ofNanos(System.nanoTime() - t0));
        }
    }

    @Override
    public boolean revokeOrphan(Workload workload, KeySpec key, String leaseId) throws IssuerException {
        long t0 = System.nanoTime();
        try {
            return delegate.revokeOrphan(workload, key, leaseId);
        } finally {
            metrics.issuerRequest(delegate.name(), "revoke", Duration.ofNanos(System.nanoTime() - t0));
        }
    }
}
