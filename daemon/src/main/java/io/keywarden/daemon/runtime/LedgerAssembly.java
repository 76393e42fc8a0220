package io.keywarden.daemon.runtime;

import io.keywarden.daemon.BuildInfo;
import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.audit.LedgerEvent;
import io.keywarden.daemon.audit.UncleanStop;
import io.keywarden.daemon.handover.Inheritance;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.Readiness;
import java.io.IOException;
import java.time.Clock;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The ledger and the audit trail over it: added early, so it is stopped late and
 * {@code daemon.stopped} (with {@link RunState#reason()}) is its last record. At a fresh start it
 * notes what a killed previous run left ({@link UncleanStopRecovery}); it records
 * {@code daemon.started} (with the predecessor of a takeover) and the policy loaded.
 */
final class LedgerAssembly {
    private static final Logger LOG = LoggerFactory.getLogger(LedgerAssembly.class);

    /** The trail, and what a killed previous run left (its ledger's tail), recovered once the issuers are up. */
    record Opened(AuditTrail audit, Ledger ledger, Optional<UncleanStop.Finding> unclean) {
        /** Every second: denials aggregated in the last window reach the ledger, which syncs when due. */
        void tick() {
            audit.flushDenials();
            if (ledger != null) {
                ledger.syncIfDue();
            }
        }
    }

    private LedgerAssembly() {
    }

    static Opened start(Spec s, Clock clock, Metrics metrics, Readiness readiness, Components components, RunState run,
                        Inheritance inherited) throws IOException {
        Ledger ledger = s.audit().file().isPresent() ? Ledger.open(s.audit().file().get(), s.node(), clock,
                s.audit().ledger(), s.audit().stdout() ? System.out : null) : null;
        AuditTrail audit = new AuditTrail(ledger, metrics, readiness);
        components.add("ledger", () -> {
            try {
                audit.record(LedgerEvent.DAEMON_STOPPED, Map.of("reason", run.reason()));
            } catch (RuntimeException e) {
                LOG.warn("could not record daemon.stopped: {}", e.getMessage());
            }
            if (ledger != null) {
                ledger.close();
            }
        });
        Optional<UncleanStop.Finding> unclean = ledger != null && inherited == null
                ? UncleanStopRecovery.note(ledger, audit, clock.instant()) : Optional.empty();
        audit.record(LedgerEvent.DAEMON_STARTED, Map.of("reason", inherited == null ? s.label() : s.label()
                + " (took over from pid " + inherited.fromPid() + ", version " + inherited.fromVersion() + ": "
                + inherited.leases().size() + " leases, " + inherited.keyFs().openFiles().size() + " open files)",
                "version", BuildInfo.load().version()));
        audit.record(LedgerEvent.POLICY_LOADED, Map.of("reason", PolicyReloads.summary(s.policy())));
        return new Opened(audit, ledger, unclean);
    }
}
