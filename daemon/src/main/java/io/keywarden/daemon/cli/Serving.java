package io.keywarden.daemon.cli;

import io.keywarden.daemon.handover.HandoverClient;
import io.keywarden.daemon.handover.Inheritance;
import io.keywarden.daemon.runtime.KeywardenRuntime;
import io.keywarden.daemon.runtime.Spec;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs a daemon until it stops, for {@code run} and {@code dev}: with {@code --takeover}, first
 * asks the running daemon (on the handover socket) for its mount and leases; and when a handover
 * this daemon started fails after it stopped, serves again from what it kept. A stop signal
 * always reaches the instance serving at that moment.
 */
final class Serving {
    private Serving() {
    }

    /** What the old daemon does once it handed over: exit, or idle until stopped (a Kubernetes pod, see below). */
    enum AfterHandover { EXIT, IDLE }

    static int serve(Spec s, PrintWriter out, boolean takeover, AfterHandover after) throws InterruptedException {
        Inheritance inherited = null;
        HandoverClient client = null;
        try {
            if (takeover) {
                // Keys arrive with the handover: not dumpable, no core, before they do.
                io.keywarden.linux.ProcessHardening.apply();
                if (java.nio.file.Files.exists(s.handoverSocket())) {
                    io.keywarden.daemon.handover.Warmup.libraries();
                }
                client = HandoverClient.connect(s.handoverSocket()).orElse(null);
                if (client == null) {
                    out.println("keywarden: --takeover: no daemon answers on " + s.handoverSocket() + "; starting normally");
                } else {
                    inherited = client.receive();
                }
            }
        } catch (IOException e) {
            if (client != null) {
                client.close();
            }
            throw new IllegalStateException("--takeover: " + s.handoverSocket() + ": " + e.getMessage(), e);
        }
        // A stop asked while the daemon starts (a supervisor's SIGTERM right after the banner, say) is
        // taken, not left to the JVM's default (exit 143, no clean stop): it closes the daemon once up.
        AtomicReference<KeywardenRuntime> current = new AtomicReference<>();
        AtomicBoolean stopping = new AtomicBoolean();
        java.util.concurrent.CountDownLatch stopAsked = new java.util.concurrent.CountDownLatch(1);
        Runnable stop = () -> {
            stopping.set(true);
            stopAsked.countDown();
            KeywardenRuntime r = current.get();
            if (r != null) {
                r.close();
            }
        };
        Runtime.getRuntime().addShutdownHook(new Thread(stop, "keywarden-shutdown"));
        Signals.onStop(stop);
        KeywardenRuntime rt;
        try {
            rt = KeywardenRuntime.start(s, out, inherited);
            if (client != null) {
                client.ready();
                out.println("keywarden: took over " + inherited.mountPoint() + " from pid " + inherited.fromPid());
                out.flush();
            }
        } catch (IOException e) {
            throw new IllegalStateException(e.getMessage(), e);
        } finally {
            if (client != null) {
                client.close();
            }
        }
        current.set(rt);
        if (stopping.get()) {
            rt.close();   // asked while starting (close is idempotent: the stop may have closed it too)
        }
        while (true) {
            rt.awaitStop();
            Optional<Inheritance> again = rt.resumeWith();
            if (again.isEmpty()) {
                if (rt.handedOverTo().isPresent() && after == AfterHandover.IDLE && !stopping.get()) {
                    idle(s, out, rt.handedOverTo().getAsLong(), stopAsked);
                }
                return rt.exitCode();
            }
            try {
                rt = KeywardenRuntime.start(s, out, again.get());
            } catch (IOException e) {
                throw new IllegalStateException("serving again after a failed handover: " + e.getMessage(), e);
            }
            current.set(rt);
            if (stopping.get()) {
                rt.close();
            }
        }
    }

    /**
     * In a pod, a container that exits is restarted, and a restarted keywarden with
     * {@code --takeover} would take the mount back from its successor. So the old pod's process
     * stays, holding nothing, until Kubernetes deletes the pod (once the new one is ready):
     * {@code /healthz} answers (the liveness probe must not restart it either), {@code /readyz} says
     * it handed over. Without the ops address (taken), it just waits.
     */
    private static void idle(Spec s, PrintWriter out, long successor, java.util.concurrent.CountDownLatch stopAsked)
            throws InterruptedException {
        out.println("keywarden: handed over to pid " + successor + "; idle until stopped (--after-handover idle)");
        out.flush();
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx(new io.vertx.core.VertxOptions().setEventLoopPoolSize(1)
                .setWorkerPoolSize(1));
        try {
            io.keywarden.daemon.ops.Readiness r = new io.keywarden.daemon.ops.Readiness();
            r.notReady("handover", "handed over to pid " + successor);
            try {
                io.keywarden.daemon.ops.OpsServer.start(vertx, s.listen().host(), s.listen().port(), r,
                        new io.keywarden.daemon.ops.Metrics(), java.util.Map.of());
            } catch (IOException e) {
                out.println("keywarden: idle without health endpoints: " + e.getMessage());
            }
            stopAsked.await();
        } finally {
            vertx.close();
        }
    }
}
