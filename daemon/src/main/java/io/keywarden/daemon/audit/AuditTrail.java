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

    public AuditTrail(Ledger ledger, Metrics metrics, Readiness readiness) {
        this.ledger = ledger;
        this.metrics = metrics;
        this.readiness = readiness;
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
        metrics.revoked(key, reason.split("[ :]", 2)[0]);
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

    @Override
    public void denied(Attestation who, String key, String file, String reason) {
        metrics.access(key, "denied");
        String spiffe = who instanceof Attestation.Identified i ? i.spiffeId().toString() : null;
        record("access.denied", accessFields(who.process(), spiffe, key, null, reason + " (" + file + ")"));
    }
}
