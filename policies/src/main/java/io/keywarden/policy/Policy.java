package io.keywarden.policy;

import io.keywarden.policy.yaml.Problem;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** A validated policy. Immutable: a reload builds a new one and swaps it in whole. */
public record Policy(Map<String, KeySpec> keys, List<Workload> workloads, Duration idleRevoke, String source) {
    public static final Duration DEFAULT_IDLE_REVOKE = Duration.ofMinutes(10);

    public Policy {
        keys = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(keys));
        workloads = List.copyOf(workloads);
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
        return workloads.stream().filter(w -> w.spiffeId().equals(id)).findFirst();
    }

    public Optional<Workload> workload(String name) {
        return workloads.stream().filter(w -> w.name().equals(name)).findFirst();
    }

    /** Problems that make this policy unusable with the Vault issuer: every key needs a {@code vault} block. */
    public List<Problem> problemsForVaultIssuer() {
        List<Problem> out = new ArrayList<>();
        for (KeySpec k : keys.values()) {
            if (k.vault().isEmpty()) {
                out.add(new Problem(k.declaredAt(), "keys." + k.name() + ": 'vault' is required when the issuer is vault"));
            }
        }
        return out;
    }
}
