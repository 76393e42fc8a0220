package io.keywarden.daemon.runtime;

import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.audit.UncleanStop;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A previous run that did not stop cleanly (its ledger ends neither with {@code daemon.stopped} nor
 * a handover): noted at once ({@code daemon.unclean_stop}); then, once the issuers are up and off
 * the start path, each lease it issued and never revoked is revoked at its issuer when the issuer
 * can ({@code key.revoked}, by the lease id in the ledger) or listed with its expiry
 * ({@code key.orphaned}), and {@code daemon.recovered} sums it up.
 */
final class UncleanStopRecovery {
    private static final Logger LOG = LoggerFactory.getLogger(UncleanStopRecovery.class);
    private static final List<String> FIELDS = List.of("workload", "spiffe_id", "key", "lease_id", "provider_key_id",
            "fingerprint", "issuer", "expires_at");

    private UncleanStopRecovery() {
    }

    /** Records {@code daemon.unclean_stop} when the previous run did not stop cleanly; what it left, to recover. */
    static Optional<UncleanStop.Finding> note(Ledger l, AuditTrail audit, Instant now) throws IOException {
        Optional<UncleanStop.Finding> found = UncleanStop.of(l, now);
        found.ifPresent(u -> {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("last_seq", u.last().get("seq"));
            f.put("last_event", u.last().get("event"));
            f.put("last_ts", u.last().get("ts"));
            f.put("torn_record", u.torn());
            f.put("leases_left", u.leftAlive().size());
            audit.record(io.keywarden.daemon.audit.LedgerEvent.DAEMON_UNCLEAN_STOP, f);
            LOG.warn("the previous run stopped without a clean shutdown (last record {} {} at {}); {} lease(s) it issued"
                    + " were never revoked: revoking them at their issuers", u.last().get("seq"), u.last().get("event"),
                    u.last().get("ts"), u.leftAlive().size());
        });
        return found;
    }

    /** Recovers on a thread of its own: an issuer that is slow or down never delays the start. */
    static void start(UncleanStop.Finding u, Supplier<Policy> policy, IssuerRegistry issuers, AuditTrail audit) {
        Thread t = new Thread(() -> recover(u, policy.get(), issuers, audit), "keywarden-recovery");
        t.setDaemon(true);
        t.start();
    }

    static void recover(UncleanStop.Finding u, Policy policy, IssuerRegistry issuers, AuditTrail audit) {
        List<String> revoked = new ArrayList<>();
        List<String> left = new ArrayList<>();
        for (Map<String, Object> r : u.leftAlive()) {
            Map<String, Object> o = new LinkedHashMap<>();
            for (String k : FIELDS) {
                if (r.get(k) != null) {
                    o.put(k, r.get(k));
                }
            }
            String leaseId = String.valueOf(r.get("lease_id"));
            String why = revoke(r, leaseId, policy, issuers);
            try {
                if (why == null) {
                    o.put("reason", "issued by a run that stopped without revoking it; revoked at its issuer by this run");
                    audit.record(io.keywarden.daemon.audit.LedgerEvent.KEY_REVOKED, o);
                    revoked.add(leaseId);
                } else {
                    o.put("reason", "issued by a run that stopped without revoking it, and not revoked now (" + why
                            + "): valid at its issuer until expires_at; revoke it there by lease_id or provider_key_id");
                    audit.record(io.keywarden.daemon.audit.LedgerEvent.KEY_ORPHANED, o);
                    left.add(leaseId + " until " + r.get("expires_at"));
                }
            } catch (RuntimeException e) {
                LOG.warn("recording the recovery of lease {} failed: {}", leaseId, e.getMessage());
            }
        }
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("revoked", revoked);
        f.put("left", left);
        f.put("reason", revoked.size() + " lease(s) a killed run left were revoked, " + left.size() + " remain valid"
                + " until they expire");
        try {
            audit.record(io.keywarden.daemon.audit.LedgerEvent.DAEMON_RECOVERED, f);
        } catch (RuntimeException e) {
            LOG.warn("recording daemon.recovered failed: {}", e.getMessage());
        }
        LOG.info("recovered from the unclean stop: {} lease(s) revoked, {} left to expire", revoked.size(), left.size());
    }

    /** Null when revoked; otherwise why not, in words. */
    private static String revoke(Map<String, Object> r, String leaseId, Policy policy, IssuerRegistry issuers) {
        Optional<Workload> w = policy.workload(String.valueOf(r.get("workload")));
        KeySpec key = policy.keys().get(String.valueOf(r.get("key")));
        if (w.isEmpty() || key == null) {
            return "the policy no longer has workload " + r.get("workload") + " or key " + r.get("key");
        }
        try {
            Optional<Issuer> named = r.get("issuer") instanceof String name ? issuers.named(name) : Optional.empty();
            Issuer issuer = named.isPresent() ? named.get() : issuers.forKey(key);
            if (!issuer.revocable()) {
                return "issuer " + issuer.name() + " cannot revoke early";
            }
            return issuer.revokeOrphan(w.get(), key, leaseId) ? null : "issuer " + issuer.name()
                    + " cannot revoke a lease of another run";
        } catch (IssuerException e) {
            return e.getMessage();
        } catch (RuntimeException e) {
            return "revoking failed: " + e.getClass().getSimpleName();
        }
    }
}
