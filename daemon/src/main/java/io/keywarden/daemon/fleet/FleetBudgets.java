package io.keywarden.daemon.fleet;

import io.keywarden.daemon.ops.FleetMetrics;
import io.keywarden.daemon.guard.Admission;
import io.keywarden.daemon.guard.BreachKind;
import io.keywarden.daemon.guard.GuardEngine;
import io.keywarden.daemon.guard.Reservation;
import io.keywarden.daemon.guard.TokenBudgets;
import io.keywarden.policy.Guard;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Token budgets held across the fleet: the node's {@link GuardEngine} still decides models and
 * requests per minute and keeps its own counts (for the ledger's usage records and the anomaly
 * rule), and a workload's token windows and in-flight reservations live in Redis, per SPIFFE ID,
 * checked and reserved in one atomic script. Reservations carry a lifetime (the gateway's answer
 * timeout and a minute): a node that dies leaks none for longer. When Redis cannot answer within
 * {@code fleet.opTimeout}: {@code onUnavailable: local} reserves against this node's own counts
 * (as without a fleet) and counts it in {@link #localFallbacks}; {@code closed} refuses with
 * {@link Admission.Unavailable}.
 */
public final class FleetBudgets implements TokenBudgets, io.keywarden.daemon.guard.SlotCounter {
    private static final Logger LOG = LoggerFactory.getLogger(FleetBudgets.class);

    private final FleetRedis redis;
    private final GuardEngine local;
    private final Clock clock;
    private final Duration lifetime;
    private final AtomicLong fallbacks = new AtomicLong();
    private final AtomicLong lastWarn = new AtomicLong();

    private final FleetMetrics metrics;

    public FleetBudgets(FleetRedis redis, GuardEngine local, Clock clock, Duration answerTimeout,
                        FleetMetrics metrics) {
        this.metrics = metrics;
        this.redis = redis;
        this.local = local;
        this.clock = clock;
        this.lifetime = answerTimeout.plusMinutes(1);
        local.decidedElsewhere();
    }

    /** A workload's fleet-wide baseline, fetched once per hour (complete hours do not change). */
    private record CachedBaseline(long hour, FleetRedis.Baseline baseline) {
    }

    private final java.util.Map<String, CachedBaseline> baselines = new java.util.concurrent.ConcurrentHashMap<>();

    /** Requests decided on this node's counts alone because Redis did not answer. */
    public long localFallbacks() {
        return fallbacks.get();
    }

    @Override
    public CompletionStage<Admission> reserve(Workload w, String model, long worstCase) {
        Guard.Budget b = w.guard().budget();
        boolean tokens = b.tokensPerHour().isPresent() || b.tokensPerDay().isPresent();
        boolean perMinute = b.requestsPerMinute().isPresent();
        // Models and requests per minute on this node first (no worst case: nothing reserved locally).
        Admission first = local.reserveNow(w, model, 0);
        if (!(first instanceof Admission.Allowed) || !(tokens || perMinute)) {
            return CompletableFuture.completedFuture(first);
        }
        long need = tokens ? Math.max(0, worstCase) : 0;
        Instant now = clock.instant();
        long hour = now.getEpochSecond() / 3600;
        long day = now.getEpochSecond() / 86_400;
        String id = redis.node() + ":" + UUID.randomUUID();
        String spiffe = w.spiffeId().toString();
        long started = System.nanoTime();
        return redis.reserve(spiffe, hour, day, need, b.tokensPerHour().orElse(-1), b.tokensPerDay().orElse(-1),
                b.requestsPerMinute().orElse(-1), id, lifetime.toMillis(), now.toEpochMilli()).handle((a, e) -> {
                    Duration took = Duration.ofNanos(System.nanoTime() - started);
                    if (e != null) {
                        Admission fallback = unavailable(w, model, worstCase, e);
                        count(fallback instanceof Admission.Unavailable ? FleetMetrics.Reservation.UNAVAILABLE
                                : FleetMetrics.Reservation.LOCAL, took);
                        return fallback;
                    }
                    count(a.admitted() ? FleetMetrics.Reservation.ADMITTED : FleetMetrics.Reservation.REFUSED, took);
                    if (a.admitted()) {
                        return (Admission) new Admission.Allowed(Reservation.fleet(w.name(), need, id));
                    }
                    if (a.window().equals("m")) {
                        long minute = now.getEpochSecond() / 60;
                        Duration retry = Duration.between(now, Instant.ofEpochSecond((minute + 1) * 60));
                        once(w, BreachKind.REQUESTS_PER_MINUTE, () -> local.fleetBreach(w, BreachKind.REQUESTS_PER_MINUTE,
                                a.used() + 1, b.requestsPerMinute().getAsLong(), Instant.ofEpochSecond((minute + 1) * 60),
                                "requests this minute fleet-wide"));
                        return new Admission.OverBudget(BreachKind.REQUESTS_PER_MINUTE, a.used() + 1,
                                b.requestsPerMinute().getAsLong(), retry.isNegative() ? Duration.ZERO : retry);
                    }
                    boolean perHour = a.window().equals("h");
                    long limit = perHour ? b.tokensPerHour().getAsLong() : b.tokensPerDay().getAsLong();
                    Instant end = perHour ? Instant.ofEpochSecond((hour + 1) * 3600) : Instant.ofEpochSecond((day + 1) * 86_400);
                    BreachKind kind = perHour ? BreachKind.TOKENS_PER_HOUR : BreachKind.TOKENS_PER_DAY;
                    if (a.used() + Math.max(1, worstCase) > limit) {
                        once(w, kind, () -> local.fleetBreach(w, kind, a.used() + worstCase, limit, end, "used fleet-wide "
                                + a.used() + " + this request's worst case " + worstCase));
                    }
                    Duration retry = Duration.between(now, end);
                    return new Admission.OverBudget(kind, a.used() + a.reserved() + worstCase, limit,
                            retry.isNegative() ? Duration.ZERO : retry);
                });
    }

    private void count(FleetMetrics.Reservation outcome, Duration took) {
        if (metrics != null) {
            metrics.fleetReservation(outcome, took);
        }
    }

    private Admission unavailable(Workload w, String model, long worstCase, Throwable e) {
        long t = System.nanoTime();
        long last = lastWarn.get();
        if (t - last > 10_000_000_000L && lastWarn.compareAndSet(last, t)) {
            LOG.warn("fleet: no reservation from Redis ({}); {} (said at most every 10 s)", e.toString(),
                    redis.config().onUnavailable() == FleetSettings.Unavailable.LOCAL
                            ? "this node enforces the budget alone (fleet.onUnavailable: local)"
                            : "guarded gateway requests are refused (fleet.onUnavailable: closed)");
        }
        if (redis.config().onUnavailable() == FleetSettings.Unavailable.CLOSED) {
            return new Admission.Unavailable("the fleet's budget store did not answer (fleet.onUnavailable: closed)");
        }
        fallbacks.incrementAndGet();
        return local.reserveNow(w, model, worstCase);
    }

    @Override
    public void settle(Workload w, Reservation r, String model, long tokensIn, long tokensOut, String sensor) {
        if (r != null && !r.claimSettlement()) {
            return;
        }
        boolean inFleet = r != null && r.fleetId() != null;
        local.settleClaimed(w, inFleet ? null : r, model, tokensIn, tokensOut, sensor);
        Guard g = w.guard();
        if (!inFleet && g.budget().tokensPerHour().isEmpty() && g.budget().tokensPerDay().isEmpty() && g.anomaly().isEmpty()) {
            return;
        }
        // Reserved on this node alone (Redis was away), or no tokens reserved (an anomaly rule only):
        // counted in the fleet all the same, with no reservation to replace.
        String id = inFleet ? r.fleetId() : "";
        Instant now = clock.instant();
        long used = Math.max(0, tokensIn) + Math.max(0, tokensOut);
        // Counted in the windows it settles in, as on one node.
        redis.settle(w.spiffeId().toString(), now.getEpochSecond() / 3600, now.getEpochSecond() / 86_400, id, used, keep(w))
                .whenComplete((totals, e) -> {
                    if (e != null) {
                        // The reservation expires by itself; the usage is counted on this node all the same.
                        LOG.warn("fleet: {} tokens of {} not settled in Redis ({}); its reservation expires within {} s",
                                used, w.name(), e.toString(), lifetime.toSeconds());
                        return;
                    }
                    checkTotals(w, totals, now, sensor);
                });
    }

    @Override
    public CompletionStage<long[]> count(Workload w, String slot, long in, long out, long requests, String sensor) {
        Instant now = clock.instant();
        return redis.countSlot(w.spiffeId().toString(), now.getEpochSecond() / 3600, now.getEpochSecond() / 86_400, slot,
                in, out, requests, keep(w)).thenApply(c -> {
                    checkTotals(w, c.totals(), now, sensor);
                    return new long[] {c.in(), c.out(), c.requests()};
                });
    }

    /** Hours of fleet history a workload keeps: its anomaly baseline's (168 without a rule, so one added later has some). */
    private static int keep(Workload w) {
        return w.guard().anomaly().map(Guard.Anomaly::baselineHours).orElse(168);
    }

    /**
     * The fleet's totals after a count: a used-up token budget fires its breach (once per window on
     * this node), and the hour's total is checked against the fleet's anomaly baseline.
     */
    private void checkTotals(Workload w, FleetRedis.Totals t, Instant now, String sensor) {
        Guard.Budget b = w.guard().budget();
        long hour = now.getEpochSecond() / 3600;
        long day = now.getEpochSecond() / 86_400;
        if (b.tokensPerHour().isPresent() && t.hour() >= b.tokensPerHour().getAsLong()) {
            once(w, BreachKind.TOKENS_PER_HOUR, () -> local.fleetBreach(w, BreachKind.TOKENS_PER_HOUR, t.hour(),
                    b.tokensPerHour().getAsLong(), Instant.ofEpochSecond((hour + 1) * 3600), "used fleet-wide, by " + sensor));
        }
        if (b.tokensPerDay().isPresent() && t.day() >= b.tokensPerDay().getAsLong()) {
            once(w, BreachKind.TOKENS_PER_DAY, () -> local.fleetBreach(w, BreachKind.TOKENS_PER_DAY, t.day(),
                    b.tokensPerDay().getAsLong(), Instant.ofEpochSecond((day + 1) * 86_400), "used fleet-wide, by " + sensor));
        }
        Guard.Anomaly a = w.guard().anomaly().orElse(null);
        if (a == null || t.hour() < a.minTokensPerHour()) {
            return;
        }
        CachedBaseline cached = baselines.get(w.name());
        if (cached != null && cached.hour() == hour) {
            anomaly(w, a, t.hour(), cached.baseline(), sensor);
            return;
        }
        redis.baseline(w.spiffeId().toString(), hour, a.baselineHours()).whenComplete((base, e) -> {
            if (e != null) {
                LOG.warn("fleet: the anomaly baseline of {} cannot be read ({}); checked at its next usage", w.name(),
                        e.toString());
                return;
            }
            baselines.put(w.name(), new CachedBaseline(hour, base));
            anomaly(w, a, t.hour(), base, sensor);
        });
    }

    private void anomaly(Workload w, Guard.Anomaly a, long hourTokens, FleetRedis.Baseline base, String sensor) {
        if (base.hours() > 0 && hourTokens > a.factor() * base.mean()) {
            once(w, BreachKind.ANOMALY, () -> local.fleetAnomaly(w, hourTokens, base.hours(), base.tokens(), sensor));
        }
    }

    /**
     * Fires a fleet-wide breach once for the fleet: the first node to claim it in Redis acts (its
     * ledger record, its action); the others note it as fired. When Redis cannot say, this node acts
     * (twice rather than never).
     */
    private void once(Workload w, BreachKind kind, Runnable fire) {
        if (local.firedThisWindow(w, kind)) {
            return;
        }
        redis.claimBreach(w.spiffeId().toString(), kind.label(), local.currentWindow(kind)).whenComplete((won, e) -> {
            if (e != null || Boolean.TRUE.equals(won)) {
                fire.run();
            } else {
                local.markFired(w, kind);
            }
        });
    }
}
