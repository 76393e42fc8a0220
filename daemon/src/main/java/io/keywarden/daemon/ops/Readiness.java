package io.keywarden.daemon.ops;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** What stands between the daemon and ready: each component sets or clears its reason. */
public final class Readiness {
    private final Map<String, String> reasons = new ConcurrentHashMap<>();

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
