package io.keywarden.daemon.lifecycle;

import io.keywarden.testkit.ManualClock;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.Comparator;
import java.util.Deque;
import java.util.PriorityQueue;

/**
 * A scheduler driven by a {@link ManualClock}: timed tasks run when the test advances time past
 * them, in order; blocking work queues until {@link #runPending()} (or any advance).
 */
public final class ManualScheduler implements Scheduler {
    private record Entry(Instant when, long seq, Runnable task, boolean[] cancelled) {
    }

    private final ManualClock clock;
    private final PriorityQueue<Entry> timed = new PriorityQueue<>(
            Comparator.comparing(Entry::when).thenComparingLong(Entry::seq));
    private final Deque<Runnable> pending = new ArrayDeque<>();
    private long seq;

    public ManualScheduler(ManualClock clock) {
        this.clock = clock;
    }

    @Override
    public synchronized Task at(Instant when, Runnable task) {
        boolean[] cancelled = {false};
        timed.add(new Entry(when, seq++, task, cancelled));
        return () -> cancelled[0] = true;
    }

    @Override
    public synchronized void execute(Runnable blocking) {
        pending.add(blocking);
    }

    /** Runs queued blocking work (and what it queues) at the current instant. */
    public void runPending() {
        while (true) {
            Runnable r;
            synchronized (this) {
                r = pending.poll();
            }
            if (r == null) {
                return;
            }
            r.run();
        }
    }

    /** Moves time forward, running every task that falls due on the way at its own instant. */
    public void advance(Duration d) {
        Instant target = clock.instant().plus(d);
        runPending();
        while (true) {
            Entry e;
            synchronized (this) {
                e = timed.peek();
                if (e == null || e.when().isAfter(target)) {
                    break;
                }
                timed.poll();
            }
            if (e.cancelled()[0]) {
                continue;
            }
            if (e.when().isAfter(clock.instant())) {
                clock.set(e.when());
            }
            e.task().run();
            runPending();
        }
        clock.set(target);
        runPending();
    }
}
