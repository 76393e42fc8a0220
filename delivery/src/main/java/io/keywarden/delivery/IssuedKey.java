package io.keywarden.delivery;

import io.keywarden.linux.Secret;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * A key as issued, with its lease. The secret bytes live off the Java heap ({@link Secret}:
 * locked, not dumped) and are wiped by {@link #destroy()} when the lease is dropped; they never
 * appear in {@link #toString()}. The fingerprint ({@code sha256:} + 16 hex) is how logs and the
 * ledger name it.
 */
public final class IssuedKey {
    private final Secret secret;
    private final Instant expiresAt;
    private final String leaseId;
    private final String fingerprint;
    private final java.util.List<Header> headers;
    private KeyText headerText;
    private String headerPrefix;

    /** Takes ownership of {@code secret}. */
    public IssuedKey(Secret secret, Instant expiresAt, String leaseId) {
        this(secret, expiresAt, leaseId, java.util.List.of());
    }

    /**
     * Takes ownership of {@code secret}; {@code headers} are the HTTP headers a caller must send
     * with this credential besides {@code Authorization} (never secret), served as the key's
     * {@code headers} file.
     */
    public IssuedKey(Secret secret, Instant expiresAt, String leaseId, java.util.List<Header> headers) {
        this(secret, expiresAt, leaseId, headers, fingerprint(secret));
    }

    private IssuedKey(Secret secret, Instant expiresAt, String leaseId, java.util.List<Header> headers,
                      String fingerprint) {
        this.secret = secret;
        this.expiresAt = expiresAt;
        this.leaseId = leaseId;
        this.fingerprint = fingerprint;
        this.headers = java.util.List.copyOf(headers);
    }

    /**
     * A key whose bytes are already gone, known by its fingerprint: what a lease still to be revoked
     * is after a handover (a revoke needs the lease, never the key). It cannot be served.
     */
    public static IssuedKey wiped(String fingerprint, Instant expiresAt, String leaseId) {
        return new IssuedKey(null, expiresAt, leaseId, java.util.List.of(), fingerprint);
    }

    /**
     * The key's own bytes, for KeyFS's handles to read (never to close: {@link #destroy} wipes them
     * when the lease is dropped, after which a read of them fails).
     */
    Secret secret() {
        if (secret == null) {
            throw new IllegalStateException("the key of lease " + leaseId + " was wiped before it was handed over");
        }
        return secret;
    }

    /** Extra HTTP headers to send with this credential; empty for most. */
    public java.util.List<Header> headers() {
        return headers;
    }

    /** Copies {@code secret} off the heap; the caller wipes its array. */
    public IssuedKey(byte[] secret, Instant expiresAt, String leaseId) {
        this(Secret.copyOf(secret), expiresAt, leaseId);
    }

    public static String fingerprint(Secret secret) {
        MessageDigest md = sha256();
        secret.updateDigest(md);
        return "sha256:" + HexFormat.of().formatHex(md.digest(), 0, 8);
    }

    /** For tools and tests that hold a key as text; the daemon never does. */
    public static String fingerprint(String secret) {
        return fingerprint(secret.getBytes(java.nio.charset.StandardCharsets.UTF_8));
    }

    public static String fingerprint(byte[] secret) {
        return "sha256:" + HexFormat.of().formatHex(sha256().digest(secret), 0, 8);
    }

    /** Cloned per fingerprint: looking SHA-256 up among the providers each time cost more than hashing the key. */
    private static final MessageDigest SHA256;

    static {
        try {
            SHA256 = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    private static MessageDigest sha256() {
        try {
            return (MessageDigest) SHA256.clone();
        } catch (CloneNotSupportedException e) {
            throw new IllegalStateException("this JVM's SHA-256 cannot be cloned", e);
        }
    }

    /** The key's length in bytes (0 for a wiped one). */
    public int length() {
        return secret == null || secret.isClosed() ? 0 : secret.length();
    }

    /** An off-heap copy with a life of its own; the caller closes it. */
    public Secret secretDuplicate() {
        return secret().duplicate();
    }

    /** A heap copy, for consumers that must have an array (writing a file); the caller wipes it. */
    public byte[] secretCopy() {
        return secret().toByteArray();
    }

    /**
     * The key as header text with {@code prefix} ({@code "Bearer "}, or empty), made on first use
     * and kept with the lease: every request of the gateway sends this one object; {@link #destroy}
     * wipes it with the key.
     */
    public synchronized KeyText headerText(String prefix) {
        if (headerText == null || !headerPrefix.equals(prefix)) {
            if (headerText != null) {
                headerText.wipe();
            }
            byte[] k = secretCopy();
            try {
                headerText = KeyText.of(prefix, k);
                headerPrefix = prefix;
            } finally {
                Arrays.fill(k, (byte) 0);
            }
        }
        return headerText;
    }

    /** Wipes the key's bytes (and its header text): the lease is gone. Later reads of it fail. */
    public void destroy() {
        if (secret != null) {
            secret.close();
        }
        synchronized (this) {
            if (headerText != null) {
                headerText.wipe();
            }
        }
    }

    public boolean isDestroyed() {
        return secret == null || secret.isClosed();
    }

    /** Whether this key's bytes equal {@code other}'s (for tests); compared without leaving copies behind. */
    public boolean sameSecretAs(IssuedKey other) {
        byte[] a = secretCopy();
        byte[] b = other.secretCopy();
        try {
            return MessageDigest.isEqual(a, b);
        } finally {
            Arrays.fill(a, (byte) 0);
            Arrays.fill(b, (byte) 0);
        }
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

    /** {@link #isExpiredAt(Instant)} at {@code nowMillis} (epoch ms): from the millisecond its expiry falls in. */
    public boolean isExpiredAt(long nowMillis) {
        return nowMillis >= expiresAt.toEpochMilli();
    }

    @Override
    public String toString() {
        return "IssuedKey[" + fingerprint + ", lease " + leaseId + ", expires " + expiresAt + "]";
    }
}
