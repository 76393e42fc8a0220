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

    /** One issuer call. */
    private interface Call<T> {
        T run() throws IssuerException;
    }

    private <T> T timed(String op, Call<T> call) throws IssuerException {
        long t0 = System.nanoTime();
        try {
            return call.run();
        } finally {
            metrics.issuerRequest(delegate.name(), op, Duration.ofNanos(System.nanoTime() - t0));
        }
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        return timed("issue", () -> delegate.issue(workload, key, opener));
    }

    @Override
    public void revoke(Lease lease) throws IssuerException {
        timed("revoke", () -> {
            delegate.revoke(lease);
            return null;
        });
    }

    @Override
    public boolean revokeOrphan(Workload workload, KeySpec key, String leaseId) throws IssuerException {
        return timed("revoke", () -> delegate.revokeOrphan(workload, key, leaseId));
    }
}
