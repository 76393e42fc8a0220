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
    private final String fleetId;
    private final AtomicBoolean settled = new AtomicBoolean();

    Reservation(String workload, long tokens) {
        this(workload, tokens, null);
    }

    private Reservation(String workload, long tokens, String fleetId) {
        this.workload = workload;
        this.tokens = tokens;
        this.fleetId = fleetId;
    }

    /** A reservation held in the fleet's store under {@code id}. */
    public static Reservation fleet(String workload, long tokens, String id) {
        return new Reservation(workload, tokens, id);
    }

    /** The fleet store's id of this reservation, or null for one held on this node. */
    public String fleetId() {
        return fleetId;
    }

    /** True the first time only: whoever gets true settles it. */
    public boolean claimSettlement() {
        return claim();
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
