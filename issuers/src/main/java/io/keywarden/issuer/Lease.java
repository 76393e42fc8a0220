package io.keywarden.issuer;

import io.keywarden.delivery.IssuedKey;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * A key and the lease it lives under. {@code expiresAt} is already the effective end: the earlier
 * of the lease's end and the end of the token it was issued under. {@code issuer} is the name of
 * the instance that issued it, stamped by the lease core. {@code providerExpiresAt} is when the
 * credential dies at the provider whatever becomes of its revoke (OpenAI's {@code api_key.expires_at}
 * through the engine, OpenRouter's {@code expires_at}, a minted token's own end); empty when the
 * issuer does not know of one (the key then lives at the provider until it is revoked).
 */
public record Lease(IssuedKey key, Instant issuedAt, boolean renewable, Optional<String> providerKeyId, String issuer,
                    boolean revocable, Optional<Instant> providerExpiresAt) {

    public Lease(IssuedKey key, Instant issuedAt, boolean renewable, Optional<String> providerKeyId) {
        this(key, issuedAt, renewable, providerKeyId, "", true, Optional.empty());
    }

    /** This lease stamped with the issuer instance that issued it (the one that revokes it). */
    public Lease from(Issuer by) {
        return by.name().equals(issuer) && by.revocable() == revocable ? this
                : new Lease(key, issuedAt, renewable, providerKeyId, by.name(), by.revocable(), providerExpiresAt);
    }

    /** This lease, known to die at the provider at {@code at}. */
    public Lease diesAtProvider(Instant at) {
        return new Lease(key, issuedAt, renewable, providerKeyId, issuer, revocable, Optional.of(at));
    }

    public String leaseId() {
        return key.leaseId();
    }

    public Instant expiresAt() {
        return key.expiresAt();
    }

    public Duration lifetime() {
        return Duration.between(issuedAt, key.expiresAt());
    }

    @Override
    public String toString() {
        return "Lease[" + key.leaseId() + " " + key.fingerprint() + " until " + key.expiresAt() + "]";
    }
}
