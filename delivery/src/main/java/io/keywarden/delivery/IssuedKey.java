package io.keywarden.delivery;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HexFormat;

/**
 * A key as issued, with its lease. The secret bytes never appear in {@link #toString()}; the
 * fingerprint ({@code sha256:} + 16 hex) is how logs and the ledger name it.
 */
public final class IssuedKey {
    private final byte[] secret;
    private final Instant expiresAt;
    private final String leaseId;
    private final String fingerprint;

    public IssuedKey(byte[] secret, Instant expiresAt, String leaseId) {
        this.secret = secret.clone();
        this.expiresAt = expiresAt;
        this.leaseId = leaseId;
        this.fingerprint = fingerprint(secret);
    }

    public static String fingerprint(byte[] secret) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(secret);
            return "sha256:" + HexFormat.of().formatHex(d, 0, 8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    public static String fingerprint(String secret) {
        return fingerprint(secret.getBytes(StandardCharsets.UTF_8));
    }

    /** A fresh copy of the secret; the caller owns (and should wipe) it. */
    public byte[] secretCopy() {
        return secret.clone();
    }

    public Instant expiresAt() {
        return expiresAt;
    }

    public String leaseId() {
        return leaseId;
    }

    public String fingerprint() {
        return fingerprint;
    }

    public boolean isExpiredAt(Instant now) {
        return !now.isBefore(expiresAt);
    }

    @Override
    public String toString() {
        return "IssuedKey[" + fingerprint + ", lease " + leaseId + ", expires " + expiresAt + "]";
    }
}
