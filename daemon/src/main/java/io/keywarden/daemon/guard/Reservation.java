package io.keywarden.daemon.guard;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Tokens set aside for one admitted request until its usage is known: {@code tokens} is the
 * request's worst case (input size plus its output limit). Settled exactly once, to the metered
 * usage or, when that cannot be read, to what {@link TokenBudgets#settle} is told to charge.
 */
public final class Reservation {
    private final String workload;
    private final long tokens;
    private final AtomicBoolean settled = new AtomicBoolean();

    Reservation(String workload, long tokens) {
        this.workload = workload;
        this.tokens = tokens;
    }

    public String workload() {
        return workload;
    }

    /** The worst case reserved. */
    public long tokens() {
        return tokens;
    }

    /** True the first time only. */
    boolean claim() {
        return settled.compareAndSet(false, true);
    }

    @Override
    public String toString() {
        return "Reservation[" + workload + ", " + tokens + " tokens" + (settled.get() ? ", settled" : "") + "]";
    }
}
