package io.keywarden.daemon.issuer;

import io.keywarden.delivery.IssuedKey;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;

/**
 * A key and the lease it lives under. {@code expiresAt} is already the effective end: the earlier
 * of the lease's end and the end of the token it was issued under. {@code issuer} is the name of
 * the instance that issued it, stamped by the lease core.
 */
public record Lease(IssuedKey key, Instant issuedAt, boolean renewable, Optional<String> providerKeyId, String issuer,
                    boolean revocable) {

    public Lease(IssuedKey key, Instant issuedAt, boolean renewable, Optional<String> providerKeyId) {
        this(key, issuedAt, renewable, providerKeyId, "", true);
    }

    /** This lease stamped with the issuer instance that issued it (the one that revokes it). */
    public Lease from(Issuer by) {
        return by.name().equals(issuer) && by.revocable() == revocable ? this
                : new Lease(key, issuedAt, renewable, providerKeyId, by.name(), by.revocable());
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
