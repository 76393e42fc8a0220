package io.keywarden.attestation;

import io.keywarden.policy.SpiffeId;
import io.keywarden.policy.Workload;

/** Who a calling process is: a workload of the policy, or why it is nobody. */
public sealed interface Attestation {

    /** The process, when it could be read (for the ledger even on denial); null when it vanished. */
    ProcessInfo process();

    record Identified(ProcessInfo process, Workload workload, SpiffeId spiffeId) implements Attestation {
    }

    record Unidentified(ProcessInfo process, String reason) implements Attestation {
    }
}
