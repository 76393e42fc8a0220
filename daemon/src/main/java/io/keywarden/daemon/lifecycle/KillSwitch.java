package io.keywarden.daemon.lifecycle;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Workloads an operator (or, next, the spend guard) has cut off: no key is served to them until
 * unblocked. In memory here; {@code blocks.BlockList} owns them: it persists them by SPIFFE ID and re-applies them
 * at start and on every policy reload; the admin API records every change in the ledger.
 */
public final class KillSwitch {
    private final Map<String, String> blocked = new ConcurrentHashMap<>();

    public void block(String workload, String reason) {
        blocked.put(workload, reason);
    }

    /** True when the workload was blocked. */
    public boolean unblock(String workload) {
        return blocked.remove(workload) != null;
    }

    /** Why {@code workload} is blocked, or empty. */
    public Optional<String> reason(String workload) {
        return Optional.ofNullable(blocked.get(workload));
    }

    public Map<String, String> all() {
        return Map.copyOf(blocked);
    }
}
