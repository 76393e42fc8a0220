package io.keywarden.attestation;

import io.keywarden.policy.Policy;
import io.keywarden.policy.WorkloadMatch;
import java.util.function.Supplier;

/**
 * The dev identity provider's attestation: /proc facts matched against the policy's selectors.
 * Two matching workloads are an ambiguity, denied.
 */
public final class SelectorAttestor implements WorkloadAttestor {
    private final ProcAttestor proc;
    private final Supplier<Policy> policy;

    public SelectorAttestor(ProcAttestor proc, Supplier<Policy> policy) {
        this.proc = proc;
        this.policy = policy;
    }

    @Override
    public Attestation attest(int tid, int uid, int gid) {
        ProcessInfo p;
        try {
            p = proc.attest(tid, uid, gid);
        } catch (ProcessGoneException e) {
            return new Attestation.Unidentified(null, e.getMessage());
        }
        if (p.tracerPid() != 0) {
            return new Attestation.Unidentified(p, "being traced by pid " + p.tracerPid() + " (ptrace): refused");
        }
        WorkloadMatch m = policy.get().match(p);
        if (m instanceof WorkloadMatch.Matched w) {
            return new Attestation.Identified(p, w.workload(), w.workload().spiffeId());
        }
        if (m instanceof WorkloadMatch.Ambiguous a) {
            return new Attestation.Unidentified(p, a.describe());
        }
        return new Attestation.Unidentified(p, "no workload's selectors match");
    }

    @Override
    public boolean isAlive(ProcessInfo process) {
        return proc.isAlive(process);
    }
}
