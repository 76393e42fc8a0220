package io.keywarden.policy;

import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.regex.Pattern;

/**
 * A workload's spend and model guard ({@code guard:} in the policy): which models it may ask for
 * (globs, {@code *} any run of characters), its token and request budgets, the anomaly rule (the
 * current hour's tokens above {@code factor} × its own rolling hourly baseline, once above a floor),
 * and what happens on a breach. {@link #NONE}: no guard (every model, no budget, no anomaly rule).
 */
public record Guard(List<String> models, Budget budget, Optional<Anomaly> anomaly, OnBreach onBreach) {
    public static final Guard NONE = new Guard(List.of(), Budget.NONE, Optional.empty(), OnBreach.ALERT);

    public Guard {
        models = List.copyOf(models);
    }

    /** What a breach does besides the metric and the ledger record. */
    public enum OnBreach {
        /** Metric and ledger only. */
        ALERT,
        /** Also revoke the workload's credentials now (a fresh one is issued on the next use). */
        REVOKE,
        /** Also revoke and refuse until an operator unblocks or the budget window resets. */
        BLOCK;

        public static OnBreach parse(String s) {
            return switch (s) {
                case "alert" -> ALERT;
                case "revoke" -> REVOKE;
                case "block" -> BLOCK;
                default -> throw new IllegalArgumentException("must be alert, revoke or block, not '" + s + "'");
            };
        }

        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** Limits; an empty one is no limit. */
    public record Budget(OptionalLong tokensPerHour, OptionalLong tokensPerDay, OptionalLong requestsPerMinute) {
        public static final Budget NONE = new Budget(OptionalLong.empty(), OptionalLong.empty(), OptionalLong.empty());
    }

    /**
     * {@code factor} × the mean of the last {@code baselineHours} complete hours; nothing fires while
     * the current hour is under {@code minTokensPerHour} or no baseline hour has passed yet.
     */
    public record Anomaly(double factor, int baselineHours, long minTokensPerHour) {
    }

    /** Whether this guard restricts models at all. */
    public boolean restrictsModels() {
        return !models.isEmpty();
    }

    /** Whether {@code model} matches one of the globs; always true when no model list is set. */
    public boolean allowsModel(String model) {
        if (models.isEmpty()) {
            return true;
        }
        if (model == null) {
            return false;
        }
        for (String glob : models) {
            if (glob(glob).matcher(model).matches()) {
                return true;
            }
        }
        return false;
    }

    private static final java.util.Map<String, Pattern> GLOBS = new java.util.concurrent.ConcurrentHashMap<>();

    /** {@code *} is any run of characters; everything else is literal. */
    static Pattern glob(String glob) {
        return GLOBS.computeIfAbsent(glob, g -> {
            StringBuilder re = new StringBuilder();
            String[] parts = g.split("\\*", -1);
            for (int i = 0; i < parts.length; i++) {
                if (i > 0) {
                    re.append(".*");
                }
                if (!parts[i].isEmpty()) {
                    re.append(Pattern.quote(parts[i]));
                }
            }
            return Pattern.compile(re.toString(), Pattern.DOTALL);
        });
    }
}
