package io.keywarden.policy;

import java.util.List;

/** The outcome of matching a process against the policy's workloads. */
public sealed interface WorkloadMatch {

    record Matched(Workload workload) implements WorkloadMatch {
    }

    record None() implements WorkloadMatch {
    }

    /** Two or more workloads match: the process is denied and the ledger says so. */
    record Ambiguous(List<Workload> candidates) implements WorkloadMatch {
        public Ambiguous {
            candidates = List.copyOf(candidates);
        }

        public String describe() {
            return "ambiguous: matches workloads " + String.join(", ", candidates.stream().map(Workload::name).toList());
        }
    }
}
