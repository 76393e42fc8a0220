package io.keywarden.daemon.lifecycle;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/** The production scheduler: one timer thread, and a bounded pool for blocking issuer calls. */
public final class SystemScheduler implements Scheduler, AutoCloseable {
    private final Clock clock;
    private final ScheduledExecutorService timer;
    private final ExecutorService blocking;

    public SystemScheduler(Clock clock, int blockingThreads) {
        this.clock = clock;
        ScheduledThreadPoolExecutor t = new ScheduledThreadPoolExecutor(1, named("keywarden-timer"));
        // Leases cancel their expiry and retry timers on every refresh: drop them from the queue at
        // once rather than waking the timer thread for each dead one when its time comes.
        t.setRemoveOnCancelPolicy(true);
        this.timer = t;
        this.blocking = Executors.newFixedThreadPool(blockingThreads, named("keywarden-issuer"));
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
        ScheduledFuture<?> f = timer.schedule(() -> blocking.execute(task), delay, TimeUnit.MILLISECONDS);
        return () -> f.cancel(false);
    }

    @Override
    public void execute(Runnable task) {
        blocking.execute(task);
    }

    @Override
    public void close() {
        timer.shutdownNow();
        blocking.shutdown();
        try {
            blocking.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
