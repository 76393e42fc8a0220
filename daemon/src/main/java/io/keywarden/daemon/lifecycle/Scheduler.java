package io.keywarden.daemon.lifecycle;

import java.time.Instant;

/** Runs tasks at instants of the injected clock; tests drive a manual one with a fake clock. */
public interface Scheduler {

    interface Task {
        void cancel();
    }

    /** Runs {@code task} at {@code when}, on a thread that may block (a refresh makes its issuer call there). */
    Task at(Instant when, Runnable task);

    /** Runs a blocking call (an issuer request) off the caller's thread. */
    void execute(Runnable blocking);

    /**
     * Runs {@code task} every {@code period} (measured from the end of the previous run) until the
     * returned task is cancelled or the scheduler closes; a failing run is logged, not fatal.
     */
    default Task every(java.time.Clock clock, java.time.Duration period, Runnable task) {
        java.util.concurrent.atomic.AtomicReference<Task> next = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicBoolean cancelled = new java.util.concurrent.atomic.AtomicBoolean();
        Runnable[] run = new Runnable[1];
        run[0] = () -> {
            if (cancelled.get()) {
                return;
            }
            try {
                task.run();
            } catch (RuntimeException e) {
                org.slf4j.LoggerFactory.getLogger(Scheduler.class).warn("periodic task failed: " + e);
            }
            if (!cancelled.get()) {
                next.set(at(clock.instant().plus(period), run[0]));
            }
        };
        next.set(at(clock.instant().plus(period), run[0]));
        return () -> {
            cancelled.set(true);
            Task t = next.get();
            if (t != null) {
                t.cancel();
            }
        };
    }
}
