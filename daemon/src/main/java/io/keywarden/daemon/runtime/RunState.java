package io.keywarden.daemon.runtime;

import java.util.concurrent.CountDownLatch;

/**
 * Where the daemon is in its life: booted (it owns its mount, ledger and socket), stopping, stopped;
 * why it stops ({@code daemon.stopped}'s reason) and its exit code. One stop wins: whoever
 * {@link #beginStop}s first (a signal, a lost mount, a handover) stops the components; the others
 * see it stopping.
 */
final class RunState {
    private final CountDownLatch stopped = new CountDownLatch(1);
    private boolean stopping;
    private volatile boolean booted;
    private volatile int exitCode;
    private volatile String reason = "shutdown";

    /** True for the first caller only: it stops the components. {@code why} (may be null) is the stop's reason. */
    synchronized boolean beginStop(String why) {
        if (stopping) {
            return false;
        }
        stopping = true;
        if (why != null) {
            reason = why;
        }
        return true;
    }

    synchronized boolean stopping() {
        return stopping;
    }

    void reason(String why) {
        reason = why;
    }

    String reason() {
        return reason;
    }

    void booted() {
        booted = true;
    }

    boolean isBooted() {
        return booted;
    }

    void exitCode(int code) {
        exitCode = code;
    }

    int exitCode() {
        return exitCode;
    }

    /** Releases {@link #awaitStopped}. */
    void stopped() {
        stopped.countDown();
    }

    void awaitStopped() throws InterruptedException {
        stopped.await();
    }
}
