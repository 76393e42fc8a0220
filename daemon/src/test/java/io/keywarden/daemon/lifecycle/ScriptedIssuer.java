package io.keywarden.daemon.lifecycle;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.Lease;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** An issuer whose answers a test controls: TTL, outages, and a record of every call. */
final class ScriptedIssuer implements Issuer {
    private final Clock clock;
    volatile Duration ttl = Duration.ofSeconds(100);
    volatile boolean down;
    volatile boolean permanent;
    final List<Lease> issued = new ArrayList<>();
    final List<String> revoked = new ArrayList<>();
    final List<Instant> attempts = new ArrayList<>();

    ScriptedIssuer(Clock clock) {
        this.clock = clock;
    }

    @Override
    public String name() {
        return "scripted";
    }

    @Override
    public synchronized Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        attempts.add(clock.instant());
        if (down) {
            throw IssuerException.http(permanent ? "403 permission denied" : "503 Vault is sealed", permanent ? 403 : 503);
        }
        int n = issued.size() + 1;
        Instant now = clock.instant();
        String secret = "sk-test-" + workload.name() + "-" + n;
        Lease l = new Lease(new IssuedKey(secret.getBytes(StandardCharsets.US_ASCII), now.plus(ttl), "lease-" + n), now,
                false, Optional.of("key_" + n));
        issued.add(l);
        return l;
    }

    /** Revokes to refuse before one is taken (as OpenBao answers 400 when the provider's delete fails). */
    volatile int refuseRevokes;

    @Override
    public synchronized void revoke(Lease lease) throws IssuerException {
        if (refuseRevokes > 0) {
            refuseRevokes--;
            throw IssuerException.http("400 failed to revoke entry: the provider answered 500", 400);
        }
        revoked.add(lease.leaseId());
    }

    synchronized int issueCount() {
        return issued.size();
    }

    synchronized List<String> liveLeases() {
        List<String> live = new ArrayList<>();
        for (Lease l : issued) {
            if (!revoked.contains(l.leaseId()) && clock.instant().isBefore(l.expiresAt())) {
                live.add(l.leaseId());
            }
        }
        return live;
    }
}
