package io.keywarden.daemon.lifecycle;

import io.keywarden.issuer.Lease;
import io.keywarden.policy.Workload;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;

/**
 * The state of one (workload, key): the current lease, the previous one during an overlap, the
 * timers, the issuance in flight and the last failure.
 *
 * <p>Synchronisation: every field is written only while holding this slot's monitor.
 * {@code current}, {@code lastError}, {@code idleSince} and {@code workload} are volatile so that
 * the read path (an open with a valid key) and views read them without the lock. {@link #openers}
 * is thread-safe itself. Timer tasks and issuance run on the {@link Scheduler}'s threads and take
 * the monitor for every change; nothing blocking (an issuer call, a ledger write) runs under it.
 */
final class LeaseSlot {
    final String workloadName;
    final String keyName;
    /** Served without openers (tmpfs delivery): never idle-revoked, never tied to processes. */
    final boolean eager;
    final Openers openers = new Openers();

    private final Id id;
    volatile Workload workload;
    volatile Lease current;
    volatile String lastError;
    volatile Instant idleSince;
    Lease previous;
    Scheduler.Task previousRevoke;
    Scheduler.Task refreshTask;
    Scheduler.Task expiryTask;
    Scheduler.Task retryTask;
    CompletableFuture<Lease> inflight;
    int failures;
    volatile Instant lastRefresh;

    LeaseSlot(Workload w, String key, boolean eager) {
        this.id = new Id(w.name(), key);
        this.workloadName = w.name();
        this.keyName = key;
        this.workload = w;
        this.eager = eager;
    }

    /**
     * A slot's name in the manager's table: (workload, key), compared by hand (a record's own equals
     * and hashCode go through method handles, which the daemon's C1-only JIT does not inline; a
     * string built per open cost as much), looked up on every open.
     */
    record Id(String workload, String key) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Id i && workload.equals(i.workload) && key.equals(i.key);
        }

        @Override
        public int hashCode() {
            return workload.hashCode() * 31 + key.hashCode();
        }
    }

    Id id() {
        return id;
    }

    /** The current lease when it is still valid at {@code nowMillis} (epoch milliseconds; a lease ends at its expiry's millisecond). */
    Lease validAt(long nowMillis) {
        Lease l = current;
        return l != null && nowMillis < l.expiresAt().toEpochMilli() ? l : null;
    }

    /** Cancels every timer; called under the monitor. */
    void cancelTimers() {
        cancel(refreshTask);
        cancel(expiryTask);
        cancel(retryTask);
        cancel(previousRevoke);
        refreshTask = null;
        expiryTask = null;
        retryTask = null;
        previousRevoke = null;
    }

    static void cancel(Scheduler.Task t) {
        if (t != null) {
            t.cancel();
        }
    }
}
