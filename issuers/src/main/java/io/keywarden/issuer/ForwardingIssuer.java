package io.keywarden.issuer;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;
import java.util.Optional;

/**
 * An issuer that wraps another and forwards every call to it; decorators (metering, the policy
 * hook) override only what they add to.
 */
public abstract class ForwardingIssuer implements Issuer {
    protected final Issuer delegate;

    protected ForwardingIssuer(Issuer delegate) {
        this.delegate = delegate;
    }

    @Override
    public String name() {
        return delegate.name();
    }

    @Override
    public String type() {
        return delegate.type();
    }

    @Override
    public boolean revocable() {
        return delegate.revocable();
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        return delegate.issue(workload, key, opener);
    }

    @Override
    public void revoke(Lease lease) throws IssuerException {
        delegate.revoke(lease);
    }

    @Override
    public boolean revokeOrphan(Workload workload, KeySpec key, String leaseId) throws IssuerException {
        return delegate.revokeOrphan(workload, key, leaseId);
    }

    @Override
    public byte[] handoverState() {
        return delegate.handoverState();
    }

    @Override
    public void adoptHandoverState(byte[] state) throws IssuerException {
        delegate.adoptHandoverState(state);
    }

    @Override
    public Optional<String> unavailable() {
        return delegate.unavailable();
    }

    @Override
    public java.util.List<com.nimbusds.jose.jwk.JWK> publicKeys() {
        return delegate.publicKeys();
    }
}
