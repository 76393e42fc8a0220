package io.keywarden.daemon.lifecycle;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The production scheduler: one bounded pool ({@code keywarden-issuer-N}) whose threads both wait
 * for timed tasks and run them, and run blocking work handed to it. A due refresh then wakes one
 * thread, not a timer thread that hands it on to another (at a node's refresh rate each hand-off
 * was a futex wake and a context switch: ScaleBench, docs/benchmarks.md).
 */
public final class SystemScheduler implements Scheduler, AutoCloseable {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(SystemScheduler.class);
    private final Clock clock;
    private final ScheduledThreadPoolExecutor pool;

    public SystemScheduler(Clock clock, int threads) {
        this.clock = clock;
        ScheduledThreadPoolExecutor p = new ScheduledThreadPoolExecutor(threads, named("keywarden-issuer"));
        // Leases cancel their expiry and retry timers on every refresh: drop them from the queue at
        // once rather than waking a thread for each dead one when its time comes.
        p.setRemoveOnCancelPolicy(true);
        // On close, timed tasks not yet due are dropped; work already due (handed to execute) finishes.
        p.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        p.setContinueExistingPeriodicTasksAfterShutdownPolicy(false);
        this.pool = p;
    }

    private static java.util.concurrent.ThreadFactory named(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    @Override
    public Task at(Instant when, Runnable task) {
        long delay = Math.max(0, Duration.between(clock.instant(), when).toMillis());
        ScheduledFuture<?> f = pool.schedule(logged(task), delay, TimeUnit.MILLISECONDS);
        return () -> f.cancel(false);
    }

    @Override
    public void execute(Runnable task) {
        pool.execute(logged(task));
    }

    /** The pool keeps a task's failure in its future, which nobody reads: it is logged instead. */
    private static Runnable logged(Runnable task) {
        return () -> {
            try {
                task.run();
            } catch (RuntimeException | Error e) {
                LOG.error("scheduled task failed", e);
                throw e;
            }
        };
    }

    @Override
    public void close() {
        pool.shutdown();
        try {
            pool.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
