package io.keywarden.daemon.issuer;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;
import java.time.Duration;

/** Times every issuer call into {@code keywarden_issuer_request_seconds{issuer,op}}. */
public final class MeteredIssuer implements Issuer {
    private final Issuer issuer;
    private final Metrics metrics;

    public MeteredIssuer(Issuer issuer, Metrics metrics) {
        this.issuer = issuer;
        this.metrics = metrics;
    }

    @Override
    public String name() {
        return issuer.name();
    }

    @Override
    public String type() {
        return issuer.type();
    }

    @Override
    public boolean revocable() {
        return issuer.revocable();
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        long t0 = System.nanoTime();
        try {
            return issuer.issue(workload, key, opener);
        } finally {
            metrics.issuerRequest(issuer.name(), "issue", Duration.ofNanos(System.nanoTime() - t0));
        }
    }

    @Override
    public void revoke(Lease lease) throws IssuerException {
        long t0 = System.nanoTime();
        try {
            issuer.revoke(lease);
        } finally {
            metrics.issuerRequest(issuer.name(), "revoke", Duration.ofNanos(System.nanoTime() - t0));
        }
    }

    @Override
    public java.util.Optional<String> unavailable() {
        return issuer.unavailable();
    }
}
