package io.keywarden.policy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** A validated policy. Immutable: a reload builds a new one and swaps it in whole. */
public record Policy(Map<String, KeySpec> keys, List<Workload> workloads, Duration idleRevoke, String source,
                     Map<String, Workload> byName, Map<SpiffeId, Workload> bySpiffeId) {
    public static final Duration DEFAULT_IDLE_REVOKE = Duration.ofMinutes(10);

    public Policy {
        keys = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(keys));
        workloads = List.copyOf(workloads);
        Map<String, Workload> names = new java.util.HashMap<>();
        Map<SpiffeId, Workload> ids = new java.util.HashMap<>();
        for (Workload w : workloads) {
            names.putIfAbsent(w.name(), w);
            ids.putIfAbsent(w.spiffeId(), w);
        }
        byName = Map.copyOf(names);
        bySpiffeId = Map.copyOf(ids);
    }

    public Policy(Map<String, KeySpec> keys, List<Workload> workloads, Duration idleRevoke, String source) {
        this(keys, workloads, idleRevoke, source, Map.of(), Map.of());
    }

    /** Matches on selectors (the dev identity provider's job); two matches are ambiguous. */
    public WorkloadMatch match(ProcessFacts process) {
        List<Workload> hits = new ArrayList<>(2);
        for (Workload w : workloads) {
            if (w.matches(process)) {
                hits.add(w);
            }
        }
        return switch (hits.size()) {
            case 0 -> new WorkloadMatch.None();
            case 1 -> new WorkloadMatch.Matched(hits.get(0));
            default -> new WorkloadMatch.Ambiguous(hits);
        };
    }

    /** The workload SPIRE named (SPIRE mode: SPIRE decides who the process is). */
    public Optional<Workload> workloadBySpiffeId(SpiffeId id) {
        return Optional.ofNullable(bySpiffeId.get(id));
    }

    public Optional<Workload> workload(String name) {
        return Optional.ofNullable(byName.get(name));
    }
}
