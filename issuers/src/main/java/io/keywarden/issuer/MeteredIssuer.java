package io.keywarden.issuer;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;
import java.time.Duration;

/** Times every issuer call into {@code keywarden_issuer_request_seconds{issuer,op}}. */
public final class MeteredIssuer extends ForwardingIssuer {
    private final IssuerMetrics metrics;

    public MeteredIssuer(Issuer issuer, IssuerMetrics metrics) {
        super(issuer);
        this.metrics = metrics;
    }

    /** One issuer call. */
    private interface Call<T> {
        T run() throws IssuerException;
    }

    private <T> T timed(IssuerMetrics.Op op, Call<T> call) throws IssuerException {
        long t0 = System.nanoTime();
        try {
            return call.run();
        } finally {
            metrics.issuerRequest(delegate.name(), op, Duration.ofNanos(System.nanoTime() - t0));
        }
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        return timed(IssuerMetrics.Op.ISSUE, () -> delegate.issue(workload, key, opener));
    }

    @Override
    public void revoke(Lease lease) throws IssuerException {
        timed(IssuerMetrics.Op.REVOKE, () -> {
            delegate.revoke(lease);
            return null;
        });
    }

    @Override
    public boolean revokeOrphan(Workload workload, KeySpec key, String leaseId) throws IssuerException {
        return timed(IssuerMetrics.Op.REVOKE, () -> delegate.revokeOrphan(workload, key, leaseId));
    }
}
