package io.keywarden.daemon.guard;

import io.keywarden.policy.Guard;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Enforces each workload's {@code guard:}. One engine for both sensors: the gateway asks
 * {@link #admit} before it sends a request upstream and reports the usage it read from the answer
 * with {@link #record}; the usage-API poller reports what the provider says was used, late by the
 * provider's reporting lag.
 *
 * <p>Windows are UTC clock windows: the minute, the hour and the day a request falls in (a budget
 * "per hour" resets at the top of the hour; {@code Retry-After} says when). The anomaly rule compares
 * the current hour's tokens with the mean of the workload's last {@code baselineHours} complete
 * hours (hours without use count as zero), and fires only above {@code minTokensPerHour} and once
 * there is at least one complete hour of history. A token budget is breached when it is used up
 * (usage reaches the limit); the gateway then refuses further requests until its window resets. Each kind of breach fires once per window; the
 * action ({@code onBreach}) follows its record. A model refusal is recorded once per workload,
 * model and minute.
 *
 * <p>Threads: any; each workload's counters are guarded by their own monitor, and the listener is
 * called outside it.
 *
 * <p>Over 400 lines: one workload's counters and every rule that reads them (models, three budget
 * windows, the anomaly rule, their fleet-wide forms) under one monitor.
 */
public final class GuardEngine implements TokenBudgets {
    /** Hours of baseline kept when a workload's anomaly rule does not say (so one added later has history). */
    static final int DEFAULT_BASELINE_HOURS = 168;
    /** Distinct refused models remembered per minute (beyond that, refusals are still counted, not recorded). */
    static final int MAX_REFUSED_MODELS = 64;

    private final Clock clock;
    private final GuardListener listener;
    private final Map<String, Counters> byWorkload = new ConcurrentHashMap<>();

    public GuardEngine(Clock clock, GuardListener listener) {
        this.clock = clock;
        this.listener = listener;
    }

    /**
     * Set when the fleet decides on fleet-wide counts: usage counted here then never fires a token
     * budget or the anomaly rule on this node's own counts (a refusal here still does).
     */
    private volatile boolean decidedElsewhere;

    /** Token budgets and the anomaly rule are decided on the fleet's counts: see {@link #fleetBreach}, {@link #fleetAnomaly}. */
    public void decidedElsewhere() {
        decidedElsewhere = true;
    }

    /**
     * The fleet's anomaly check: {@code hourTokens} used this hour fleet-wide against the mean of the
     * fleet's last {@code hours} complete hours ({@code baselineTokens} in all). Fires once per hour on
     * this node, with the workload's action, like a local breach.
     */
    public void fleetAnomaly(Workload w, long hourTokens, int hours, long baselineTokens, String sensor) {
        Guard.Anomaly a = w.guard().anomaly().orElse(null);
        if (a == null || hours == 0) {
            return;
        }
        double mean = (double) baselineTokens / hours;
        double threshold = a.factor() * mean;
        if (hourTokens < a.minTokensPerHour() || hourTokens <= threshold) {
            return;
        }
        Counters c = counters(w.name());
        boolean first;
        synchronized (c) {
            roll(c, clock.instant(), w.guard());
            first = firstIn(c, BreachKind.ANOMALY, c.hour);
        }
        if (first) {
            act(w, new Fire(BreachKind.ANOMALY, hourTokens + " (fleet-wide)", String.format(java.util.Locale.ROOT,
                    "%.0f (%.2f x %.0f over %d h, fleet-wide)", threshold, a.factor(), mean, hours),
                    Instant.ofEpochSecond((c.hour + 1) * 3600)), sensor);
        }
    }

    /** One workload's windows. Every field is guarded by the instance's monitor. */
    static final class Counters {
        long minute = -1;
        long requestsMinute;
        long hour = -1;
        long tokensHour;
        long day = -1;
        long tokensDay;
        /** Tokens reserved by requests in flight (their worst cases), not yet settled. */
        long reserved;
        final ArrayDeque<Long> baseline = new ArrayDeque<>();
        /** The window (minute, hour or day number) in which each kind last fired. */
        final EnumMap<BreachKind, Long> fired = new EnumMap<>(BreachKind.class);
        final Set<String> refusedThisMinute = new HashSet<>();
        // The minute being aggregated for the ledger's usage record, and finished minutes not yet written.
        long usageMinute = -1;
        long usageIn;
        long usageOut;
        long usageRequests;
        final Map<String, Long> usageModels = new LinkedHashMap<>();
        final List<Usage> pending = new ArrayList<>();
    }

    record Usage(Instant minute, long in, long out, long requests, Map<String, Long> models) {
    }

    /** A breach decided under the lock, fired after it. */
    private record Fire(BreachKind kind, String observed, String limit, Instant windowEnd) {
    }

    /**
     * May {@code w} send a request for {@code model} now? Counts the request against its per-minute
     * budget when it is allowed.
     */
    public Admission admit(Workload w, String model) {
        return reserveNow(w, model, 0);
    }

    @Override
    public java.util.concurrent.CompletionStage<Admission> reserve(Workload w, String model, long worstCase) {
        return java.util.concurrent.CompletableFuture.completedFuture(reserveNow(w, model, worstCase));
    }

    /** {@link #reserve}, answered on the caller's thread. */
    public Admission reserveNow(Workload w, String model, long worstCase) {
        long need = Math.max(0, worstCase);
        Guard g = w.guard();
        Instant now = clock.instant();
        Counters c = counters(w.name());
        if (!g.allowsModel(model)) {
            boolean first;
            synchronized (c) {
                roll(c, now, g);
                String m = String.valueOf(model);
                first = c.refusedThisMinute.size() < MAX_REFUSED_MODELS && c.refusedThisMinute.add(m);
            }
            if (first) {
                listener.breach(w, BreachKind.MODEL, model == null ? "(no model in the request)" : model,
                        String.join(", ", g.models()), "refused", "gateway");
            }
            return new Admission.ModelRefused(model, g.models());
        }
        Guard.Budget b = g.budget();
        Admission answer = Admission.ALLOWED;
        Fire fire = null;
        synchronized (c) {
            roll(c, now, g);
            if (b.requestsPerMinute().isPresent() && c.requestsMinute >= b.requestsPerMinute().getAsLong()) {
                Instant end = Instant.ofEpochSecond((c.minute + 1) * 60);
                answer = new Admission.OverBudget(BreachKind.REQUESTS_PER_MINUTE, c.requestsMinute + 1,
                        b.requestsPerMinute().getAsLong(), until(now, end));
                if (firstIn(c, BreachKind.REQUESTS_PER_MINUTE, c.minute)) {
                    fire = new Fire(BreachKind.REQUESTS_PER_MINUTE, Long.toString(c.requestsMinute + 1),
                            Long.toString(b.requestsPerMinute().getAsLong()), end);
                }
            } else if (b.tokensPerHour().isPresent() && overBy(c.tokensHour, c.reserved, need, b.tokensPerHour().getAsLong())) {
                Instant end = Instant.ofEpochSecond((c.hour + 1) * 3600);
                answer = new Admission.OverBudget(BreachKind.TOKENS_PER_HOUR, c.tokensHour + c.reserved + need,
                        b.tokensPerHour().getAsLong(), until(now, end));
                // A breach: this request's worst case cannot fit beside what is used (not merely beside
                // what is in flight, which may settle lower).
                if (c.tokensHour + Math.max(1, need) > b.tokensPerHour().getAsLong()
                        && firstIn(c, BreachKind.TOKENS_PER_HOUR, c.hour)) {
                    fire = new Fire(BreachKind.TOKENS_PER_HOUR, (c.tokensHour + need) + " (used " + c.tokensHour
                            + " + this request's worst case " + need + ")", Long.toString(b.tokensPerHour().getAsLong()), end);
                }
            } else if (b.tokensPerDay().isPresent() && overBy(c.tokensDay, c.reserved, need, b.tokensPerDay().getAsLong())) {
                Instant end = Instant.ofEpochSecond((c.day + 1) * 86_400);
                answer = new Admission.OverBudget(BreachKind.TOKENS_PER_DAY, c.tokensDay + c.reserved + need,
                        b.tokensPerDay().getAsLong(), until(now, end));
                if (c.tokensDay + Math.max(1, need) > b.tokensPerDay().getAsLong()
                        && firstIn(c, BreachKind.TOKENS_PER_DAY, c.day)) {
                    fire = new Fire(BreachKind.TOKENS_PER_DAY, (c.tokensDay + need) + " (used " + c.tokensDay
                            + " + this request's worst case " + need + ")", Long.toString(b.tokensPerDay().getAsLong()), end);
                }
            } else {
                c.requestsMinute++;
                if (need > 0 && (b.tokensPerHour().isPresent() || b.tokensPerDay().isPresent())) {
                    c.reserved += need;
                    answer = new Admission.Allowed(new Reservation(w.name(), need));
                }
            }
        }
        if (fire != null) {
            act(w, fire, "gateway");
        }
        return answer;
    }

    /**
     * A token budget the fleet found breached (used fleet-wide + this request's worst case over the
     * limit): fired once per window on this node, with the workload's action, like a local breach.
     */
    public void fleetBreach(Workload w, BreachKind kind, long observed, long limit, Instant windowEnd, String detail) {
        Counters c = counters(w.name());
        boolean first;
        synchronized (c) {
            roll(c, clock.instant(), w.guard());
            first = firstIn(c, kind, windowOf(c, kind));
        }
        if (first) {
            act(w, new Fire(kind, observed + " (" + detail + ")", Long.toString(limit), windowEnd), "gateway");
        }
    }

    /** Whether {@code kind} already fired for {@code w} in its current window on this node. */
    public boolean firedThisWindow(Workload w, BreachKind kind) {
        Counters c = counters(w.name());
        synchronized (c) {
            roll(c, clock.instant(), w.guard());
            Long last = c.fired.get(kind);
            return last != null && last == windowOf(c, kind);
        }
    }

    /** Marks {@code kind} fired for {@code w} in its current window without acting (another node acted). */
    public void markFired(Workload w, BreachKind kind) {
        Counters c = counters(w.name());
        synchronized (c) {
            roll(c, clock.instant(), w.guard());
            c.fired.put(kind, windowOf(c, kind));
        }
    }

    /** The window number {@code kind} fires once in: the minute, the day or (tokens per hour, anomaly) the hour. */
    public long currentWindow(BreachKind kind) {
        long second = clock.instant().getEpochSecond();
        return kind == BreachKind.REQUESTS_PER_MINUTE ? second / 60 : kind == BreachKind.TOKENS_PER_DAY ? second / 86_400
                : second / 3600;
    }

    private static long windowOf(Counters c, BreachKind kind) {
        return kind == BreachKind.REQUESTS_PER_MINUTE ? c.minute : kind == BreachKind.TOKENS_PER_DAY ? c.day : c.hour;
    }

    /**
     * Whether a window that has {@code used} tokens and {@code reserved} in flight cannot take
     * {@code need} more: with no worst case given (0), only a used-up budget refuses.
     */
    private static boolean overBy(long used, long reserved, long need, long limit) {
        return need == 0 ? used >= limit : used + reserved + need > limit;
    }

    @Override
    public void settle(Workload w, Reservation r, String model, long tokensIn, long tokensOut, String sensor) {
        if (r != null && !r.claim()) {
            return;
        }
        settleClaimed(w, r, model, tokensIn, tokensOut, sensor);
    }

    /**
     * {@link #settle} for a caller that already claimed {@code r}'s settlement (or has none): its
     * tokens leave what is in flight here, and the usage is counted.
     */
    public void settleClaimed(Workload w, Reservation r, String model, long tokensIn, long tokensOut, String sensor) {
        if (r != null) {
            Counters c = counters(r.workload());
            synchronized (c) {
                c.reserved = Math.max(0, c.reserved - r.tokens());
            }
        }
        record(w, model, tokensIn, tokensOut, 1, sensor);
    }

    /**
     * Usage seen by a sensor ({@code sensor}: "gateway" or "usage-api"): counted in the windows, the
     * ledger's per-minute aggregate and checked against the budgets and the anomaly rule.
     */
    public void record(Workload w, String model, long tokensIn, long tokensOut, long requests, String sensor) {
        Guard g = w.guard();
        Instant now = clock.instant();
        Counters c = counters(w.name());
        List<Fire> fires = new ArrayList<>(2);
        long tokens = Math.max(0, tokensIn) + Math.max(0, tokensOut);
        synchronized (c) {
            roll(c, now, g);
            c.tokensHour += tokens;
            c.tokensDay += tokens;
            c.usageIn += Math.max(0, tokensIn);
            c.usageOut += Math.max(0, tokensOut);
            c.usageRequests += Math.max(0, requests);
            if (model != null && (c.usageModels.containsKey(model) || c.usageModels.size() < MAX_REFUSED_MODELS)) {
                c.usageModels.merge(model, Math.max(0, requests), Long::sum);
            }
            Guard.Budget b = g.budget();
            if (!decidedElsewhere && b.tokensPerHour().isPresent() && c.tokensHour >= b.tokensPerHour().getAsLong()
                    && firstIn(c, BreachKind.TOKENS_PER_HOUR, c.hour)) {
                fires.add(new Fire(BreachKind.TOKENS_PER_HOUR, Long.toString(c.tokensHour),
                        Long.toString(b.tokensPerHour().getAsLong()), Instant.ofEpochSecond((c.hour + 1) * 3600)));
            }
            if (!decidedElsewhere && b.tokensPerDay().isPresent() && c.tokensDay >= b.tokensPerDay().getAsLong()
                    && firstIn(c, BreachKind.TOKENS_PER_DAY, c.day)) {
                fires.add(new Fire(BreachKind.TOKENS_PER_DAY, Long.toString(c.tokensDay),
                        Long.toString(b.tokensPerDay().getAsLong()), Instant.ofEpochSecond((c.day + 1) * 86_400)));
            }
            if (!decidedElsewhere && g.anomaly().isPresent() && !c.baseline.isEmpty()) {
                Guard.Anomaly a = g.anomaly().get();
                double mean = c.baseline.stream().mapToLong(Long::longValue).average().orElse(0);
                double threshold = a.factor() * mean;
                if (c.tokensHour >= a.minTokensPerHour() && c.tokensHour > threshold
                        && firstIn(c, BreachKind.ANOMALY, c.hour)) {
                    fires.add(new Fire(BreachKind.ANOMALY, Long.toString(c.tokensHour),
                            String.format(java.util.Locale.ROOT, "%.0f (%.2f x %.0f over %d h)", threshold, a.factor(),
                                    mean, c.baseline.size()), Instant.ofEpochSecond((c.hour + 1) * 3600)));
                }
            }
        }
        for (Fire f : fires) {
            act(w, f, sensor);
        }
    }

    /** Writes the per-minute usage of finished minutes (the runtime calls this every few seconds). */
    public void flushUsage() {
        flushUsage(false);
    }

    /** {@code all}: the current minute too, as far as it went (at shutdown). */
    public void flushUsage(boolean all) {
        Instant now = clock.instant();
        long minute = now.getEpochSecond() / 60;
        byWorkload.forEach((name, c) -> {
            List<Usage> out;
            synchronized (c) {
                if (c.usageMinute != minute || all) {
                    long current = c.usageMinute;
                    finishUsageMinute(c, minute);
                    if (all) {
                        c.usageMinute = current;
                    }
                }
                if (c.pending.isEmpty()) {
                    return;
                }
                out = new ArrayList<>(c.pending);
                c.pending.clear();
            }
            for (Usage u : out) {
                listener.usage(name, u.minute(), u.in(), u.out(), u.requests(), u.models());
            }
        });
    }

    /** What the engine knows of {@code workload} (status, tests). */
    public Snapshot snapshot(String workload) {
        Counters c = counters(workload);
        synchronized (c) {
            return new Snapshot(c.requestsMinute, c.tokensHour, c.tokensDay, List.copyOf(c.baseline), c.reserved);
        }
    }

    public record Snapshot(long requestsThisMinute, long tokensThisHour, long tokensToday, List<Long> baselineHours,
                           long reserved) {
    }

    /** Forgets workloads the policy no longer has. */
    public void retain(Set<String> workloads) {
        byWorkload.keySet().retainAll(workloads);
    }

    private void act(Workload w, Fire f, String sensor) {
        Guard.OnBreach action = w.guard().onBreach();
        listener.breach(w, f.kind(), f.observed(), f.limit(), action.label(), sensor);
        String reason = "the guard: " + f.kind().label().replace('_', ' ') + " " + f.observed() + " over " + f.limit();
        switch (action) {
            case ALERT -> { }
            case REVOKE -> listener.revoke(w, reason);
            case BLOCK -> listener.block(w, reason, f.windowEnd());
            default -> throw new IllegalStateException(action.name());
        }
    }

    private static Duration until(Instant now, Instant end) {
        Duration d = Duration.between(now, end);
        return d.isNegative() ? Duration.ZERO : d;
    }

    private static boolean firstIn(Counters c, BreachKind kind, long window) {
        Long last = c.fired.get(kind);
        if (last != null && last == window) {
            return false;
        }
        c.fired.put(kind, window);
        return true;
    }

    private Counters counters(String workload) {
        return byWorkload.computeIfAbsent(workload, k -> new Counters());
    }

    /** Moves {@code c}'s windows to {@code now}; completed hours join the baseline. Caller holds c's monitor. */
    static void roll(Counters c, Instant now, Guard g) {
        long second = now.getEpochSecond();
        long minute = second / 60;
        long hour = second / 3600;
        long day = second / 86_400;
        if (c.minute != minute) {
            c.minute = minute;
            c.requestsMinute = 0;
            c.refusedThisMinute.clear();
        }
        if (c.usageMinute != minute) {
            finishUsageMinute(c, minute);
        }
        int keep = g.anomaly().map(Guard.Anomaly::baselineHours).orElse(DEFAULT_BASELINE_HOURS);
        if (c.hour != hour) {
            if (c.hour >= 0 && hour > c.hour) {
                c.baseline.addLast(c.tokensHour);
                for (long h = c.hour + 1; h < hour && h - c.hour <= keep; h++) {
                    c.baseline.addLast(0L);
                }
            }
            c.hour = hour;
            c.tokensHour = 0;
        }
        while (c.baseline.size() > keep) {
            c.baseline.removeFirst();
        }
        if (c.day != day) {
            c.day = day;
            c.tokensDay = 0;
        }
    }

    private static void finishUsageMinute(Counters c, long minute) {
        if (c.usageMinute >= 0 && (c.usageIn + c.usageOut + c.usageRequests) > 0) {
            c.pending.add(new Usage(Instant.ofEpochSecond(c.usageMinute * 60), c.usageIn, c.usageOut, c.usageRequests,
                    Map.copyOf(c.usageModels)));
        }
        c.usageMinute = minute;
        c.usageIn = 0;
        c.usageOut = 0;
        c.usageRequests = 0;
        c.usageModels.clear();
    }

    // ---- state that survives a restart ----

    /** The counters of every workload, for the state file. */
    public Map<String, GuardState.WorkloadState> export() {
        Map<String, GuardState.WorkloadState> out = new LinkedHashMap<>();
        byWorkload.forEach((name, c) -> {
            synchronized (c) {
                Map<String, Long> fired = new LinkedHashMap<>();
                c.fired.forEach((k, v) -> fired.put(k.name(), v));
                out.put(name, new GuardState.WorkloadState(c.minute, c.requestsMinute, c.hour, c.tokensHour, c.day,
                        c.tokensDay, List.copyOf(c.baseline), fired));
            }
        });
        return out;
    }

    /** Restores counters saved by {@link #export} (at start, before any request). */
    public void restore(Map<String, GuardState.WorkloadState> saved) {
        saved.forEach((name, s) -> {
            Counters c = counters(name);
            synchronized (c) {
                c.minute = s.minute();
                c.requestsMinute = s.requestsMinute();
                c.hour = s.hour();
                c.tokensHour = s.tokensHour();
                c.day = s.day();
                c.tokensDay = s.tokensDay();
                c.baseline.clear();
                c.baseline.addAll(s.baseline());
                c.fired.clear();
                s.fired().forEach((k, v) -> {
                    try {
                        c.fired.put(BreachKind.valueOf(k), v);
                    } catch (IllegalArgumentException unknown) {
                        // a kind this version does not know: dropped
                    }
                });
            }
        });
    }
}
