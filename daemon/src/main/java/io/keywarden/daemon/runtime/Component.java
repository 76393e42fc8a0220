package io.keywarden.daemon.runtime;

import java.util.Optional;
import java.util.function.Supplier;

/**
 * A part of the running daemon with a lifecycle: started when the runtime adds it (its factory
 * builds it started), stopped in the reverse of the order they were added, and asked every
 * {@code tuning.readinessInterval} whether it can serve ({@code /readyz} lists what it says).
 */
public interface Component {

    /** The name in logs and in {@code /readyz} reasons: {@code ledger}, {@code issuer bao}, {@code delivery}. */
    String name();

    /** Stops it; never throws for an ordinary failure (it is logged by {@link Components}). */
    void stop() throws Exception;

    /** Why it cannot serve now, or empty. Blocking and bounded (a probe of its dependency). */
    default Optional<String> unavailable() {
        return Optional.empty();
    }

    static Component of(String name, AutoCloseable stop) {
        return of(name, stop, Optional::empty);
    }

    static Component of(String name, AutoCloseable stop, Supplier<Optional<String>> probe) {
        return new Component() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public void stop() throws Exception {
                stop.close();
            }

            @Override
            public Optional<String> unavailable() {
                return probe.get();
            }
        };
    }
}
