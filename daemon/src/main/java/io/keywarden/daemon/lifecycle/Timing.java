package io.keywarden.daemon.lifecycle;

import java.time.Duration;
import java.time.Instant;
import java.util.random.RandomGenerator;

/** The lifecycle's timing rules as pure functions, so they are tested without waiting. */
public final class Timing {
    static final double JITTER = 0.05;
    static final Duration BACKOFF_FIRST = Duration.ofSeconds(1);
    static final Duration BACKOFF_MAX = Duration.ofSeconds(60);

    private Timing() {
    }

    /** When to refresh: {@code refreshAt} of the lifetime (±5% of it), never after expiry. */
    public static Instant refreshTime(Instant issued, Instant expires, double refreshAt, RandomGenerator random) {
        long life = Duration.between(issued, expires).toMillis();
        double fraction = refreshAt + (random.nextDouble() * 2 - 1) * JITTER;
        fraction = Math.max(0.05, Math.min(0.95, fraction));
        return issued.plusMillis((long) (life * fraction));
    }

    /** Delay before retry number {@code attempt} (1-based): 1 s doubling to 60 s, with ±20% jitter. */
    public static Duration backoff(int attempt, RandomGenerator random) {
        long base = BACKOFF_FIRST.toMillis() << Math.min(Math.max(attempt - 1, 0), 6);
        base = Math.min(base, BACKOFF_MAX.toMillis());
        double j = 0.8 + random.nextDouble() * 0.4;
        return Duration.ofMillis(Math.min((long) (base * j), BACKOFF_MAX.toMillis()));
    }
}
