package io.keywarden.daemon.cli;

import sun.misc.Signal;

/**
 * SIGTERM and SIGINT ask the daemon to stop: it unmounts, revokes and records the stop, and the
 * command then returns its own exit code (0 for a requested stop) instead of the JVM's 143/130.
 */
final class Signals {
    private Signals() {
    }

    static void onStop(Runnable stop) {
        for (String name : new String[] {"TERM", "INT"}) {
            Signal.handle(new Signal(name), s -> {
                Thread t = new Thread(stop, "keywarden-sig" + s.getName().toLowerCase(java.util.Locale.ROOT));
                t.start();
            });
        }
    }
}
