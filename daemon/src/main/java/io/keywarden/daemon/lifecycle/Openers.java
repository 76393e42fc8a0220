package io.keywarden.daemon.lifecycle;

import java.util.List;

import io.keywarden.attestation.ProcessInfo;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;

/**
 * Which processes opened a slot's current lease, and which still hold the previous one (during a
 * refresh's overlap). The sets are concurrent: the read path adds to them without the slot's lock.
 * {@link #rotate} and {@link #reset} swap them and are called under the slot's lock; an opener
 * noted during a swap lands in the set that was current, which at worst keeps the previous lease
 * until its grace ends.
 */
final class Openers {
    private record Opener(int pid, long start) {
        @Override
        public boolean equals(Object o) {
            // Written out: a record's own equals and hashCode go through method handles, which the
            // daemon's C1-only JIT does not inline (3% of the gateway's event loop by perf, as map keys).
            return o instanceof Opener p && pid == p.pid && start == p.start;
        }

        @Override
        public int hashCode() {
            return 31 * pid + Long.hashCode(start);
        }
    }

    private volatile Map<Opener, ProcessInfo> current = new ConcurrentHashMap<>();
    private volatile Map<Opener, ProcessInfo> previous = new ConcurrentHashMap<>();

    /** {@code p} opened the current lease; true when that emptied the previous lease's holders. */
    boolean opened(ProcessInfo p) {
        Opener o = new Opener(p.pid(), p.startTime());
        current.putIfAbsent(o, p);
        Map<Opener, ProcessInfo> prev = previous;
        return prev.remove(o) != null && prev.isEmpty();
    }

    /** A new lease became current: its holders start empty, the old holders now hold the previous one. */
    void rotate() {
        previous = current;
        current = new ConcurrentHashMap<>();
    }

    /** The current lease was replaced without overlap: nobody holds the new one yet. */
    void resetCurrent() {
        current = new ConcurrentHashMap<>();
    }

    void clearPrevious() {
        previous = new ConcurrentHashMap<>();
    }

    /** Forgets processes that exited (or whose pid was reused). */
    void forgetDead(Predicate<ProcessInfo> alive) {
        previous.values().removeIf(alive.negate());
        current.values().removeIf(alive.negate());
    }

    /** The processes holding the current (or the previous) lease, for a successor daemon. */
    List<ProcessInfo> holders(boolean ofPrevious) {
        return List.copyOf((ofPrevious ? previous : current).values());
    }

    /** Takes over holders noted by a predecessor daemon. */
    void adopt(List<ProcessInfo> currentHolders, List<ProcessInfo> previousHolders) {
        currentHolders.forEach(p -> current.putIfAbsent(new Opener(p.pid(), p.startTime()), p));
        previousHolders.forEach(p -> previous.putIfAbsent(new Opener(p.pid(), p.startTime()), p));
    }

    boolean previousEmpty() {
        return previous.isEmpty();
    }

    boolean currentEmpty() {
        return current.isEmpty();
    }

    int currentCount() {
        return current.size();
    }
}
