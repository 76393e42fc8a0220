package io.keywarden.issuer;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;

/**
 * One issuer instance: where a key comes from (Vault/OpenBao, or the dev issuer). Calls block: the lifecycle runs them
 * on its own threads, never on an event loop or a FUSE worker.
 */
public interface Issuer {

    /** The instance name from the config ({@code issuers.<name>}), for metrics, readiness and the ledger. */
    String name();

    /** The instance's type: {@code vault}, {@code dev}. */
    default String type() {
        return name();
    }

    /**
     * Whether a lease can be revoked early at the provider. When not (federated tokens), revoking
     * only stops serving it, and the ledger says {@code revocable: false}.
     */
    default boolean revocable() {
        return true;
    }

    /** Issues a new key for {@code workload}; {@code opener} is a process of it, when one asked. */
    Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException;

    /** Revokes a lease now; afterwards its key no longer works at the provider. */
    void revoke(Lease lease) throws IssuerException;

    /**
     * Revokes a lease a previous run of the daemon issued and never revoked (it was killed), known
     * only by its lease id from the ledger; the credentials that held it died with that run. True
     * when it is revoked; false when this issuer cannot do that (the lease then lives until it
     * expires, and the ledger says so).
     */
    default boolean revokeOrphan(Workload workload, KeySpec key, String leaseId) throws IssuerException {
        return false;
    }

    /**
     * What a successor daemon needs to revoke and refresh the leases this instance issued (Vault:
     * the tokens that hold them), for a handover; secret, passed only in memory. Empty: nothing.
     */
    default byte[] handoverState() {
        return new byte[0];
    }

    /** Takes over {@link #handoverState()} of the same instance in the daemon that handed over. */
    default void adoptHandoverState(byte[] state) throws IssuerException {
    }

    /** Why this issuer cannot serve any workload right now (for /readyz), or empty when it can. Blocking, bounded. */
    default java.util.Optional<String> unavailable() {
        return java.util.Optional.empty();
    }

    /**
     * The public keys this issuer signs client assertions with ({@code private_key_jwt}), which the
     * node publishes in one JWKS at {@link IssuerRegistry#CLIENT_JWKS_PATH}. Empty for most types.
     */
    default java.util.List<com.nimbusds.jose.jwk.JWK> publicKeys() {
        return java.util.List.of();
    }
}
