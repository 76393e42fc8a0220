package io.keywarden.daemon.ops;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What stands between the daemon and ready: each component sets or clears its reason. Beside
 * them, what keeps it ready but serving less than it should ({@link #degraded}: a fleet node
 * deciding alone), listed in {@code /readyz} without making it unready.
 */
public final class Readiness {
    private final Map<String, String> reasons = new ConcurrentHashMap<>();
    private final Map<String, String> degraded = new ConcurrentHashMap<>();

    /** {@code component} serves, but not as configured: {@code detail} says how. */
    public void degraded(String component, String detail) {
        degraded.put(component, detail);
    }

    public void notDegraded(String component) {
        degraded.remove(component);
    }

    public List<String> degradations() {
        return degraded.entrySet().stream().sorted(Map.Entry.comparingByKey())
                .map(e -> e.getKey() + ": " + e.getValue()).toList();
    }

    public void notReady(String component, String reason) {
        reasons.put(component, reason);
    }

    public void ready(String component) {
        reasons.remove(component);
    }

    public List<String> reasons() {
        return reasons.entrySet().stream().sorted(Map.Entry.comparingByKey())
                .map(e -> e.getKey() + ": " + e.getValue()).toList();
    }

    public boolean isReady() {
        return reasons.isEmpty();
    }
}
