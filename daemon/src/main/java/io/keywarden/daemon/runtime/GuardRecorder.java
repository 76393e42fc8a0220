package io.keywarden.daemon.runtime;

import io.keywarden.daemon.blocks.BlockList;
import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.guard.BreachKind;
import io.keywarden.daemon.guard.GuardListener;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.daemon.lifecycle.RevokeReason;
import io.keywarden.daemon.lifecycle.Scheduler;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.policy.Policy;
import io.keywarden.policy.SpiffeId;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.time.Clock;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the guard's decisions do in the running daemon: {@code guard.breach} and {@code usage} in
 * the ledger (before the action), the breach metric, and the actions themselves — revoke through
 * the lease core, block through the same kill switch and persisted block list as an operator's
 * {@code keywarden revoke --block} (so {@code keywarden status} shows it and {@code keywarden
 * unblock} lifts it), lifted by itself when the budget window resets ({@code guard.unblock}) unless
 * an operator already did or blocked it otherwise.
 */
final class GuardRecorder implements GuardListener {
    private static final Logger LOG = LoggerFactory.getLogger(GuardRecorder.class);
    private static final Pattern UNTIL = Pattern.compile("^(?:the )?guard: .* \\(until (\\S+)\\)$");

    private final AuditTrail audit;
    private final Metrics metrics;
    private final Supplier<LeaseManager> leases;
    private final Supplier<BlockList> blocks;
    private final Supplier<Policy> policy;
    private final Scheduler scheduler;
    private final Clock clock;

    GuardRecorder(AuditTrail audit, Metrics metrics, Supplier<LeaseManager> leases, Supplier<BlockList> blocks,
                  Supplier<Policy> policy, Scheduler scheduler, Clock clock) {
        this.audit = audit;
        this.metrics = metrics;
        this.leases = leases;
        this.blocks = blocks;
        this.policy = policy;
        this.scheduler = scheduler;
        this.clock = clock;
    }

    @Override
    public void breach(Workload w, BreachKind kind, String observed, String limit, String action, String sensor) {
        metrics.breach(w.name(), kind.label());
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("workload", w.name());
        f.put("spiffe_id", w.spiffeId().toString());
        f.put("kind", kind.label());
        f.put("observed", observed);
        f.put("limit", limit);
        f.put("action", action);
        f.put("sensor", sensor);
        if (kind != BreachKind.MODEL) {
            LOG.warn("guard: workload {} breached {} ({} over {}); action: {}", w.name(), kind.label(), observed, limit,
                    action);
        }
        try {
            audit.record(io.keywarden.daemon.audit.LedgerEvent.GUARD_BREACH, f);
        } catch (RuntimeException e) {
            // Taking access away is never held back by the ledger (as for an operator's revoke).
            LOG.warn("guard.breach for {} not recorded: {}", w.name(), e.getMessage());
        }
    }

    @Override
    public void revoke(Workload w, String reason) {
        LeaseManager lm = leases.get();
        if (lm != null) {
            scheduler.execute(() -> lm.revokeNow(w.name(), null, RevokeReason.GUARD, reason));
        }
    }

    /** Where the guard's blocks go besides this node, when there is a fleet. */
    private volatile java.util.function.BiFunction<String, String, java.util.concurrent.CompletionStage<Void>> fleet;

    void fleet(java.util.function.BiFunction<String, String, java.util.concurrent.CompletionStage<Void>> publish) {
        this.fleet = publish;
    }

    @Override
    public void block(Workload w, String reason, Instant until) {
        String text = reason + " (until " + until + ")";
        var f = fleet;
        if (f != null) {
            f.apply(w.spiffeId().toString(), text).whenComplete((v, e) -> {
                if (e != null) {
                    LOG.warn("guard: the block of {} is not stored in the fleet ({}): it holds on this node", w.name(),
                            e.toString());
                }
            });
        }
        BlockList b = blocks.get();
        if (b != null) {
            b.block(w.spiffeId().toString(), text).ifPresent(why -> LOG.warn("guard: {}: {}", w.name(), why));
        }
        LeaseManager lm = leases.get();
        if (lm != null) {
            scheduler.execute(() -> lm.revokeNow(w.name(), null, RevokeReason.GUARD, "blocked by " + text));
        }
        scheduleUnblock(w.spiffeId().toString(), text, until);
    }

    /** Guard blocks found in the block list at start: lifted when their window ends (at once if it did). */
    void resume() {
        BlockList b = blocks.get();
        if (b == null) {
            return;
        }
        b.all().forEach((id, reason) -> {
            Matcher m = UNTIL.matcher(reason);
            if (m.matches()) {
                try {
                    scheduleUnblock(id, reason, Instant.parse(m.group(1)));
                } catch (java.time.format.DateTimeParseException e) {
                    LOG.warn("guard block of {} has an unreadable end '{}'; an operator must unblock it", id, m.group(1));
                }
            }
        });
    }

    private void scheduleUnblock(String spiffeId, String reason, Instant until) {
        Instant at = until.isBefore(clock.instant()) ? clock.instant() : until;
        scheduler.at(at, () -> {
            BlockList b = blocks.get();
            if (b == null || !b.reason(spiffeId).map(reason::equals).orElse(false)) {
                return; // lifted by an operator, or replaced by another block: not ours to lift
            }
            Map<String, Object> f = new TreeMap<>();
            f.put("spiffe_id", spiffeId);
            f.put("reason", "the budget window ended: " + reason);
            try {
                audit.record(io.keywarden.daemon.audit.LedgerEvent.GUARD_UNBLOCK, f);
                b.unblock(spiffeId);
            } catch (RuntimeException | IOException e) {
                LOG.warn("guard: {} stays blocked: the unblock could not be recorded or saved: {}", spiffeId,
                        e.getMessage());
                return;
            }
            policy.get().workloadBySpiffeId(SpiffeId.parse(spiffeId))
                    .ifPresent(w -> LOG.info("guard: {} unblocked, its budget window ended", w.name()));
        });
    }

    @Override
    public void usage(String workload, Instant minute, long in, long out, long requests, Map<String, Long> models) {
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("workload", workload);
        f.put("minute", minute.toString());
        f.put("tokens_in", in);
        f.put("tokens_out", out);
        f.put("requests", requests);
        f.put("models", new TreeMap<>(models));
        try {
            audit.record(io.keywarden.daemon.audit.LedgerEvent.USAGE, f);
        } catch (RuntimeException e) {
            LOG.warn("usage of {} for {} not recorded: {}", workload, minute, e.getMessage());
        }
    }
}
