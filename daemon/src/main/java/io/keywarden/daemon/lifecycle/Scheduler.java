package io.keywarden.daemon.lifecycle;

import java.time.Instant;

/** Runs tasks at instants of the injected clock; tests drive a manual one with a fake clock. */
public interface Scheduler {

    interface Task {
        void cancel();
    }

    Task at(Instant when, Runnable task);

    /** Runs a blocking call (an issuer request) off the caller's thread. */
    void execute(Runnable blocking);
}
