package io.keywarden.daemon.runtime;

import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.lifecycle.SystemScheduler;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.policy.Policy;
import java.nio.file.Path;
import java.time.Clock;
import java.util.function.Supplier;

/**
 * What the daemon's parts are assembled with once the ledger and the scheduler are up: the spec,
 * the clock, the component list (the stop order), readiness, metrics, the audit trail, the
 * scheduler and the policy in force (the watcher's once it runs).
 */
record Core(Spec spec, Clock clock, Components components, Readiness readiness, Metrics metrics, AuditTrail audit,
            SystemScheduler scheduler, Supplier<Policy> policy) {

    /** A file of state that survives restarts: beside the ledger when there is one, else beside the admin socket. */
    Path stateFile(String name) {
        return spec.audit().file().map(a -> a.resolveSibling(name)).orElse(spec.adminSocket().resolveSibling(name));
    }
}
