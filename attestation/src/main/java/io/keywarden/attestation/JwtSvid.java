package io.keywarden.attestation;

import io.keywarden.policy.SpiffeId;
import java.time.Instant;

/**
 * A JWT-SVID. The token is a credential: it never appears in {@link #toString()}, logs or
 * errors; only the issuer (Vault login) reads it.
 */
public final class JwtSvid {
    private final SpiffeId spiffeId;
    private final String token;
    private final Instant issuedAt;
    private final Instant expiresAt;

    public JwtSvid(SpiffeId spiffeId, String token, Instant issuedAt, Instant expiresAt) {
        this.spiffeId = spiffeId;
        this.token = token;
        this.issuedAt = issuedAt;
        this.expiresAt = expiresAt;
    }

    public SpiffeId spiffeId() {
        return spiffeId;
    }

    /** The compact JWT, for the one call that needs it. */
    public String token() {
        return token;
    }

    public Instant issuedAt() {
        return issuedAt;
    }

    public Instant expiresAt() {
        return expiresAt;
    }

    /** True until half the SVID's life has passed: the point where SPIRE's own cache renews. */
    public boolean isFreshAt(Instant now) {
        long half = (expiresAt.toEpochMilli() - issuedAt.toEpochMilli()) / 2;
        return now.isBefore(issuedAt.plusMillis(half));
    }

    @Override
    public String toString() {
        return "JwtSvid[" + spiffeId + ", expires " + expiresAt + "]";
    }
}
