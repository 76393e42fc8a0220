package io.keywarden.daemon.audit;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.daemon.issuer.Lease;
import io.keywarden.daemon.lifecycle.LeaseEvents;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.delivery.AccessListener;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyFs;
import io.keywarden.policy.Workload;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns lease and access events into ledger records and metrics. Access is recorded before the
 * open is answered: if the ledger cannot write, the exception denies the open (fail closed).
 * Records name keys by fingerprint only.
 */
public final class AuditTrail implements LeaseEvents, AccessListener {
    private static final Logger LOG = LoggerFactory.getLogger(AuditTrail.class);
    private static final int MAX_SEEN = 100_000;

    private final Ledger ledger;
    private final Metrics metrics;
    private final Readiness readiness;
    private final Set<String> granted = ConcurrentHashMap.newKeySet();
    private final DenialAggregator denials;

    public AuditTrail(Ledger ledger, Metrics metrics, Readiness readiness) {
        this(ledger, metrics, readiness, java.time.Clock.systemUTC());
    }

    public AuditTrail(Ledger ledger, Metrics metrics, Readiness readiness, java.time.Clock clock) {
        this.ledger = ledger;
        this.metrics = metrics;
        this.readiness = readiness;
        this.denials = new DenialAggregator(clock);
    }

    /** Writes a record; a failure is loud (log, metric, not ready) and rethrown. */
    public void record(String event, Map<String, Object> fields) {
        if (ledger == null) {
            return;
        }
        try {
            ledger.append(event, fields);
            readiness.ready("ledger");
        } catch (LedgerException e) {
            metrics.ledgerError();
            readiness.notReady("ledger", e.getMessage());
            LOG.error("{}; refusing what it would have recorded ({})", e.getMessage(), event);
            throw e;
        }
    }

    private static Map<String, Object> keyFields(Workload w, String key, Lease lease, String reason) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("workload", w.name());
        f.put("spiffe_id", w.spiffeId().toString());
        f.put("key", key);
        if (lease != null) {
            f.put("lease_id", lease.leaseId());
            f.put("provider_key_id", lease.providerKeyId().orElse(null));
            f.put("fingerprint", lease.key().fingerprint());
            f.put("expires_at", KeyFs.rfc3339(lease.expiresAt()));
        }
        f.put("reason", reason);
        return f;
    }

    @Override
    public void issued(Workload w, String key, Lease lease, Lease previous) {
        if (previous == null) {
            metrics.issued(key, "ok");
            record("key.issued", keyFields(w, key, lease, "first use"));
        } else {
            metrics.refreshed(key, "ok");
            record("key.refreshed", keyFields(w, key, lease, "refresh of " + previous.leaseId()));
        }
    }

    @Override
    public void issueFailed(Workload w, String key, Lease current, String reason, boolean retryable) {
        if (current == null) {
            metrics.issued(key, "error");
        } else {
            metrics.refreshed(key, "error");
        }
        record("issue.failed", keyFields(w, key, null, reason));
    }

    @Override
    public void revoked(Workload w, String key, Lease lease, String reason) {
        metrics.revoked(key, Metrics.RevokeReason.of(reason));
        record("key.revoked", keyFields(w, key, lease, reason));
    }

    @Override
    public void expired(Workload w, String key, Lease lease) {
        record("key.expired", keyFields(w, key, lease, "not refreshed before expiry"));
    }

    private static Map<String, Object> accessFields(ProcessInfo p, String spiffeId, String key, String fingerprint,
                                                    String reason) {
        Map<String, Object> f = new LinkedHashMap<>();
        if (p != null) {
            f.put("pid", p.pid());
            f.put("uid", Integer.toUnsignedLong(p.uid()));
            f.put("gid", Integer.toUnsignedLong(p.gid()));
            f.put("exe", p.exe().orElse(null));
        }
        f.put("spiffe_id", spiffeId);
        f.put("key", key);
        f.put("fingerprint", fingerprint);
        f.put("reason", reason);
        return f;
    }

    @Override
    public void granted(Attestation.Identified who, String key, String file, IssuedKey issued) {
        metrics.access(key, "granted");
        if (issued == null) {
            return;
        }
        String once = who.process().pid() + "/" + who.process().startTime() + "/" + issued.leaseId();
        if (granted.size() > MAX_SEEN) {
            granted.clear();
        }
        if (granted.add(once)) {
            try {
                record("access.granted", accessFields(who.process(), who.spiffeId().toString(), key,
                        issued.fingerprint(), "workload " + who.workload().name() + " opened " + file));
            } catch (LedgerException e) {
                granted.remove(once);
                throw e;
            }
        }
    }

    /**
     * Denials are aggregated per (uid, exe, key, reason): the first is recorded (and logged) at
     * once, repeats within {@link DenialAggregator#WINDOW} are counted and written as one
     * {@code access.denied} record with {@code repeats} when the window closes, so a flood of
     * refused opens costs the ledger kilobytes, not megabytes. Metrics count every one.
     */
    @Override
    public void denied(Attestation who, String key, String file, String reason) {
        metrics.access(key, "denied");
        String spiffe = who instanceof Attestation.Identified i ? i.spiffeId().toString() : null;
        ProcessInfo p = who.process();
        DenialAggregator.Key k = new DenialAggregator.Key(p == null ? -1 : Integer.toUnsignedLong(p.uid()),
                p == null ? null : p.exe().orElse(null), key, reason);
        if (denials.first(k)) {
            LOG.warn("denied: uid {} pid {} exe {} key {}/{}: {}", p == null ? "?" : Integer.toUnsignedString(p.uid()),
                    p == null ? "?" : p.pid(), p == null ? "?" : p.exe().orElse("?"), key, file, reason);
            record("access.denied", accessFields(p, spiffe, key, null, reason + " (" + file + ")"));
        }
    }

    /** Writes the repeat counts of closed aggregation windows; the runtime calls this on a timer. */
    public void flushDenials() {
        denials.drain((k, repeats) -> {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("uid", k.uid() < 0 ? null : k.uid());
            f.put("exe", k.exe());
            f.put("key", k.key());
            f.put("reason", k.reason());
            f.put("repeats", repeats);
            f.put("window_s", DenialAggregator.WINDOW.toSeconds());
            try {
                record("access.denied", f);
            } catch (LedgerException e) {
                // Already loud (log, metric, readiness); the counts are lost, nothing is granted.
            }
        });
    }
}
