package io.keywarden.daemon.guard;

import io.keywarden.policy.Workload;
import java.time.Instant;
import java.util.Map;

/**
 * What the guard tells the rest of the daemon: breaches (ledger {@code guard.breach}, metric, then
 * the action) and per-minute usage aggregates (ledger {@code usage}, never any content).
 */
public interface GuardListener {
    /**
     * Recorded before the action: {@code observed} and {@code limit} are numbers for budgets and the
     * anomaly rule, the model and the allowed globs for {@link BreachKind#MODEL}; {@code action} is
     * the workload's {@code onBreach} ({@code alert}, {@code revoke}, {@code block}), or {@code refused}
     * for a model outside the allowlist (refused, nothing else).
     */
    void breach(Workload w, BreachKind kind, String observed, String limit, String action, String sensor);

    /** Revoke every credential of {@code w} now (onBreach revoke and block). */
    void revoke(Workload w, String reason);

    /** Refuse {@code w} (file and gateway) until {@code until}, unless an operator unblocks first. */
    void block(Workload w, String reason, Instant until);

    /** One minute of one workload's usage. */
    void usage(String workload, Instant minute, long tokensIn, long tokensOut, long requests, Map<String, Long> models);
}
