package io.keywarden.attestation;

import io.keywarden.policy.Policy;
import io.keywarden.policy.WorkloadMatch;
import java.util.function.Supplier;

/**
 * The dev identity provider's attestation: /proc facts matched against the policy's selectors.
 * Two matching workloads are an ambiguity, denied. A traced process is refused a workload that
 * {@linkplain io.keywarden.policy.Workload#refusesTraced() is told apart from others of its uid};
 * the tracer is read only then.
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
            p = proc.attestIgnoringTracer(tid, uid, gid);
        } catch (ProcessGoneException e) {
            return new Attestation.Unidentified(null, e.getMessage());
        }
        WorkloadMatch m = policy.get().match(p);
        if (m instanceof WorkloadMatch.Matched w) {
            // A trace could make a permitted process open for another: refused where the workload
            // is told apart from other processes of its uid (read now, not from the cache).
            if (w.workload().refusesTraced()) {
                int tracer;
                try {
                    tracer = p.tracerPid() != 0 ? p.tracerPid() : proc.tracerNow(tid, p.pid());
                } catch (ProcessGoneException e) {
                    return new Attestation.Unidentified(p, e.getMessage());
                }
                if (tracer != 0) {
                    return new Attestation.Unidentified(p, "being traced by pid " + tracer + " (ptrace): refused");
                }
            }
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
