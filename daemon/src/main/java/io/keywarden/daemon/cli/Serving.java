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

    static int serve(Spec s, PrintWriter out, boolean takeover) throws InterruptedException {
        Inheritance inherited = null;
        HandoverClient client = null;
        try {
            if (takeover) {
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
            throw new IllegalStateException("--takeover: " + s.handoverSocket() + ": " + e.getMessage());
        }
        KeywardenRuntime rt;
        try {
            rt = KeywardenRuntime.start(s, out, inherited);
            if (client != null) {
                client.ready();
                out.println("keywarden: took over " + inherited.mountPoint() + " from pid " + inherited.fromPid());
                out.flush();
            }
        } catch (IOException e) {
            throw new IllegalStateException(e.getMessage());
        } finally {
            if (client != null) {
                client.close();
            }
        }
        AtomicReference<KeywardenRuntime> current = new AtomicReference<>(rt);
        AtomicBoolean stopping = new AtomicBoolean();
        Runnable stop = () -> {
            stopping.set(true);
            current.get().close();
        };
        Runtime.getRuntime().addShutdownHook(new Thread(stop, "keywarden-shutdown"));
        Signals.onStop(stop);
        while (true) {
            rt.awaitStop();
            Optional<Inheritance> again = rt.resumeWith();
            if (again.isEmpty()) {
                return rt.exitCode();
            }
            try {
                rt = KeywardenRuntime.start(s, out, again.get());
            } catch (IOException e) {
                throw new IllegalStateException("serving again after a failed handover: " + e.getMessage());
            }
            current.set(rt);
            if (stopping.get()) {
                rt.close();
            }
        }
    }
}
