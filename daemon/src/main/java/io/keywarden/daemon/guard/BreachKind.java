package io.keywarden.daemon.guard;

import java.util.Locale;

/** What a workload went over (the {@code kind} of {@code guard.breach} and of the breach metric). */
public enum BreachKind {
    /** A request for a model outside the workload's {@code models}: refused, nothing else. */
    MODEL,
    TOKENS_PER_HOUR,
    TOKENS_PER_DAY,
    REQUESTS_PER_MINUTE,
    /** The current hour's tokens above {@code factor} × the rolling hourly baseline. */
    ANOMALY;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
