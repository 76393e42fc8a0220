package io.keywarden.daemon.runtime;

import io.keywarden.daemon.ops.Readiness;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The daemon's components in the order they started. {@link #stopAll} stops them in reverse, so
 * the order of {@code add} is the whole shutdown story: a front end added after the lease core is
 * stopped (unmounted) before the leases are revoked, the ledger added first records last.
 */
final class Components {
    private static final Logger LOG = LoggerFactory.getLogger(Components.class);

    private final List<Component> started = new ArrayList<>();
    private final Readiness readiness;

    Components(Readiness readiness) {
        this.readiness = readiness;
    }

    synchronized <T extends Component> T add(T c) {
        started.add(c);
        return c;
    }

    synchronized Component add(String name, AutoCloseable stop) {
        return add(Component.of(name, stop));
    }

    /** Asks every component whether it can serve and tells {@code /readyz}; logs each change once. */
    void probe() {
        List<Component> now;
        synchronized (this) {
            now = List.copyOf(started);
        }
        for (Component c : now) {
            Optional<String> problem;
            try {
                problem = c.unavailable();
            } catch (RuntimeException e) {
                problem = Optional.of("probe failed: " + e);
            }
            if (problem.isPresent()) {
                if (!readiness.reasons().contains(c.name() + ": " + problem.get())) {
                    LOG.warn("not ready: {}: {}", c.name(), problem.get());
                }
                readiness.notReady(c.name(), problem.get());
            } else {
                readiness.ready(c.name());
            }
        }
    }

    /** Stops every component, last added first; a failure is logged and the rest still stop. */
    void stopAll() {
        List<Component> all;
        synchronized (this) {
            all = new ArrayList<>(started);
            started.clear();
        }
        for (int i = all.size() - 1; i >= 0; i--) {
            Component c = all.get(i);
            try {
                c.stop();
            } catch (Exception e) {
                LOG.warn("stopping {} failed: {}", c.name(), e.getMessage());
            }
        }
    }
}
