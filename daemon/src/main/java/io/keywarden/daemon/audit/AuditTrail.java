package io.keywarden.daemon.audit;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.issuer.Lease;
import io.keywarden.daemon.lifecycle.LeaseEvents;
import io.keywarden.daemon.ops.AuditMetrics;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.delivery.AccessListener;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyFs;
import io.keywarden.policy.Workload;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns lease and access events into ledger records and metrics. Access is recorded before the
 * open is answered: if the ledger cannot write, the exception denies the open (fail closed).
 * Records name keys by fingerprint only.
 */
public final class AuditTrail implements LeaseEvents, AccessListener {
    private static final Logger LOG = LoggerFactory.getLogger(AuditTrail.class);

    private final Ledger ledger;
    private final AuditMetrics metrics;
    private final Readiness readiness;
    /** A denial's aggregation key. */
    record DenialKey(long uid, String exe, String key, String code, String reason) {
    }

    /** A grant's aggregation key: one process, one lease, one file. */
    record GrantKey(int pid, long start, String leaseId, String key, String file, io.keywarden.policy.SpiffeId spiffeId,
                    long uid) {
        @Override
        public boolean equals(Object o) {
            // Written out: a record's own equals and hashCode go through method handles, which the
            // daemon's C1-only JIT does not inline (3% of the gateway's event loop by perf, as map keys).
            return o instanceof GrantKey k && pid == k.pid && start == k.start && uid == k.uid
                    && java.util.Objects.equals(leaseId, k.leaseId) && java.util.Objects.equals(key, k.key)
                    && java.util.Objects.equals(file, k.file) && java.util.Objects.equals(spiffeId, k.spiffeId);
        }

        @Override
        public int hashCode() {
            int h = 31 * pid + Long.hashCode(start);
            h = 31 * h + java.util.Objects.hashCode(leaseId);
            h = 31 * h + java.util.Objects.hashCode(key);
            h = 31 * h + java.util.Objects.hashCode(file);
            h = 31 * h + java.util.Objects.hashCode(spiffeId);
            return 31 * h + Long.hashCode(uid);
        }
    }

    private final RepeatAggregator<DenialKey> denials;
    private final RepeatAggregator<GrantKey> grants;

    public AuditTrail(Ledger ledger, AuditMetrics metrics, Readiness readiness) {
        this(ledger, metrics, readiness, java.time.Clock.systemUTC());
    }

    public AuditTrail(Ledger ledger, AuditMetrics metrics, Readiness readiness, java.time.Clock clock) {
        this.ledger = ledger;
        this.metrics = metrics;
        this.readiness = readiness;
        this.denials = new RepeatAggregator<>(clock,
                k -> new DenialKey(k.uid(), "(many)", k.key(), null, "many distinct denials (aggregation table full)"));
        this.grants = new RepeatAggregator<>(clock,
                k -> new GrantKey(-1, 0, "(many)", k.key(), k.file(), k.spiffeId(), k.uid()));
    }

    /** Writes a record; a failure is loud (log, metric, not ready) and rethrown. */
    public void record(LedgerEvent event, Map<String, Object> fields) {
        event.check(fields);
        if (ledger == null) {
            return;
        }
        try {
            ledger.append(event.wire(), fields);
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
            lease.providerExpiresAt().ifPresent(at -> f.put("provider_expires_at", KeyFs.rfc3339(at)));
            if (!lease.revocable()) {
                // Cannot be revoked early at the provider: "revoked" stops serving it; it works until expires_at.
                f.put("revocable", false);
            }
            if (!lease.issuer().isEmpty()) {
                f.put("issuer", lease.issuer());
            }
        }
        f.put("reason", reason);
        return f;
    }

    @Override
    public void issued(Workload w, String key, Lease lease, Lease previous) {
        if (previous == null) {
            metrics.issued(key, AuditMetrics.Outcome.OK);
            record(LedgerEvent.KEY_ISSUED, keyFields(w, key, lease, "first use"));
        } else {
            metrics.refreshed(key, AuditMetrics.Outcome.OK);
            record(LedgerEvent.KEY_REFRESHED, keyFields(w, key, lease, "refresh of " + previous.leaseId()));
        }
    }

    @Override
    public void issueFailed(Workload w, String key, Lease current, String reason, boolean retryable) {
        if (current == null) {
            metrics.issued(key, AuditMetrics.Outcome.ERROR);
        } else {
            metrics.refreshed(key, AuditMetrics.Outcome.ERROR);
        }
        record(LedgerEvent.ISSUE_FAILED, keyFields(w, key, null, reason));
    }

    @Override
    public void revoked(Workload w, String key, Lease lease, io.keywarden.daemon.lifecycle.RevokeReason code,
                        String reason) {
        metrics.revoked(key, code.label());
        record(LedgerEvent.KEY_REVOKED, keyFields(w, key, lease, reason));
    }

    @Override
    public void revokeFailed(Workload w, String key, Lease lease, String error, int attempt, java.time.Instant retryAt) {
        metrics.revokeFailed(key);
        Map<String, Object> f = keyFields(w, key, lease, error);
        f.put("attempt", attempt);
        f.put("retry_at", retryAt == null ? null : retryAt.toString());
        f.put("expires_at", lease.expiresAt().toString());
        record(LedgerEvent.KEY_REVOKE_FAILED, f);
    }

    @Override
    public void expired(Workload w, String key, Lease lease) {
        record(LedgerEvent.KEY_EXPIRED, keyFields(w, key, lease, "not refreshed before expiry"));
    }

    private static Map<String, Object> accessFields(ProcessInfo p, String workload, String spiffeId, String key,
                                                    String fingerprint, String reason) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("workload", workload);
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
        metrics.access(who.workload().name(), key, AuditMetrics.Access.GRANTED);
        if (issued == null) {
            return;
        }
        ProcessInfo p = who.process();
        // A remote (mTLS) caller has no local process: its grants aggregate per SPIFFE ID and lease.
        // Keyed by the SPIFFE ID itself: its text is built only for a record.
        GrantKey g = p == null ? new GrantKey(-1, -1, issued.leaseId(), key, file, who.spiffeId(), -1)
                : new GrantKey(p.pid(), p.startTime(), issued.leaseId(), key, file, who.spiffeId(),
                Integer.toUnsignedLong(p.uid()));
        // Every open is on record: the first of a window at once (before the open is answered; if it
        // cannot be written the open fails), its repeats as one count when the window closes.
        if (grants.first(g)) {
            try {
                record(LedgerEvent.ACCESS_GRANTED, accessFields(p, who.workload().name(), who.spiffeId().toString(), key, issued.fingerprint(),
                        "workload " + who.workload().name() + " opened " + file));
            } catch (LedgerException e) {
                grants.forget(g);
                throw e;
            }
        }
    }

    /**
     * Denials are aggregated per (uid, exe, key, reason): the first is recorded (and logged) at
     * once, repeats within {@link RepeatAggregator#WINDOW} are counted and written as one
     * {@code access.denied} record with {@code repeats} when the window closes, so a flood of
     * refused opens costs the ledger kilobytes, not megabytes. Metrics count every one.
     */
    @Override
    public void denied(Attestation who, String key, String file, io.keywarden.delivery.Decision.Refusal code,
                       String reason) {
        String spiffe = who instanceof Attestation.Identified i ? i.spiffeId().toString() : null;
        String workload = who instanceof Attestation.Identified i ? i.workload().name() : null;
        metrics.access(workload, key, AuditMetrics.Access.DENIED);
        ProcessInfo p = who.process();
        DenialKey k = new DenialKey(p == null ? -1 : Integer.toUnsignedLong(p.uid()),
                p == null ? null : p.exe().orElse(null), key, code.label(), stable(reason));
        if (denials.first(k)) {
            LOG.warn("denied: uid {} pid {} exe {} key {}/{}: {}", p == null ? "?" : Integer.toUnsignedString(p.uid()),
                    p == null ? "?" : p.pid(), p == null ? "?" : p.exe().orElse("?"), key, file, reason);
            Map<String, Object> f = accessFields(p, workload, spiffe, key, null, reason + " (" + file + ")");
            f.put("code", code.label());
            record(LedgerEvent.ACCESS_DENIED, f);
        }
    }

    /**
     * A denial's reason as its aggregation key: numbers (a tracer's pid, the pids holding a
     * connection, counts) vary from one attempt to the next and would keep every repeat apart; the
     * first record of a window keeps them.
     */
    static String stable(String reason) {
        return reason == null ? null : DIGITS.matcher(reason).replaceAll("#");
    }

    private static final java.util.regex.Pattern DIGITS = java.util.regex.Pattern.compile("[0-9]+");

    /** Writes the repeat counts of closed aggregation windows; the runtime calls this on a timer. */
    public void flushDenials() {
        grants.drain((k, repeats) -> {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("pid", k.pid() < 0 ? null : k.pid());
            f.put("uid", k.uid() < 0 ? null : k.uid());
            f.put("spiffe_id", k.spiffeId() == null ? null : k.spiffeId().toString());
            f.put("key", k.key());
            f.put("lease_id", k.leaseId());
            f.put("reason", "opened " + k.file() + " again");
            f.put("repeats", repeats);
            f.put("window_s", RepeatAggregator.WINDOW.toSeconds());
            try {
                record(LedgerEvent.ACCESS_GRANTED, f);
            } catch (LedgerException e) {
                // Already loud; these opens were each recorded once when their window opened.
            }
        });
        denials.drain((k, repeats) -> {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("uid", k.uid() < 0 ? null : k.uid());
            f.put("exe", k.exe());
            f.put("key", k.key());
            f.put("code", k.code());
            f.put("reason", k.reason());
            f.put("repeats", repeats);
            f.put("window_s", RepeatAggregator.WINDOW.toSeconds());
            try {
                record(LedgerEvent.ACCESS_DENIED, f);
            } catch (LedgerException e) {
                // Already loud (log, metric, readiness); the counts are lost, nothing is granted.
            }
        });
    }
}
