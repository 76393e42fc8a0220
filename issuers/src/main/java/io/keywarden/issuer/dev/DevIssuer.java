package io.keywarden.issuer.dev;

import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.Lease;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The dev issuer: mints {@code sk-dev-} + 48 random base62 characters with a fixed TTL, not
 * renewable, as the real OpenAI engine behaves. Keeps the set of live leases so tests and
 * {@code status} can see what was revoked.
 */
public final class DevIssuer implements Issuer {
    private static final char[] BASE62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".toCharArray();

    private final String name;
    private final Duration ttl;
    private final Clock clock;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, Instant> live = new ConcurrentHashMap<>();

    public DevIssuer(Duration ttl, Clock clock) {
        this("dev", ttl, clock);
    }

    public DevIssuer(String name, Duration ttl, Clock clock) {
        this.name = name;
        this.ttl = ttl;
        this.clock = clock;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String type() {
        return "dev";
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) {
        byte[] bytes = new byte[7 + 48];
        System.arraycopy("sk-dev-".getBytes(StandardCharsets.US_ASCII), 0, bytes, 0, 7);
        for (int i = 7; i < bytes.length; i++) {
            bytes[i] = (byte) BASE62[random.nextInt(BASE62.length)];
        }
        Instant now = clock.instant();
        String id = "dev/creds/" + workload.name() + "/" + UUID.randomUUID();
        IssuedKey k = new IssuedKey(bytes, now.plus(ttl), id);
        Arrays.fill(bytes, (byte) 0);
        live.put(id, k.expiresAt());
        return new Lease(k, now, false, Optional.of("key_dev_" + id.substring(id.lastIndexOf('/') + 1, id.lastIndexOf('/') + 9)));
    }

    @Override
    public void revoke(Lease lease) {
        live.remove(lease.leaseId());
    }

    /** A dev key is valid nowhere but in the run that issued it: a killed run's is as good as revoked. */
    @Override
    public boolean revokeOrphan(Workload workload, KeySpec key, String leaseId) {
        return true;
    }

    /** Leases issued and neither revoked nor expired. */
    public int liveLeases() {
        Instant now = clock.instant();
        live.values().removeIf(exp -> !now.isBefore(exp));
        return live.size();
    }
}
