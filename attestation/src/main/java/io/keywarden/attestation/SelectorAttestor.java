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

    /**
     * The policy's answer for one process, kept on it while that policy is the one in force: the
     * process's facts do not change while it is cached (a change attests a new one), so a repeated
     * open allocates nothing. The tracer is still read on every open where it matters.
     */
    private record Conclusion(Policy policy, Attestation answer, java.util.Optional<Attestation> now) {
        Conclusion(Policy policy, Attestation answer) {
            this(policy, answer, java.util.Optional.of(answer));
        }
    }

    @Override
    public Attestation attest(int tid, int uid, int gid) {
        return attest(tid, uid, gid, true);
    }

    /**
     * Empty when the policy compares executables' digests (a {@code unix:sha256} selector, or readers
     * by {@code sha256}) and this process's is not known yet: hashing a binary is a read of all of
     * it, which the caller's thread must not wait for; {@link #attest} on a thread that may block
     * computes it, once per binary.
     */
    @Override
    public java.util.Optional<Attestation> attestWithoutWaiting(int tid, int uid, int gid) {
        Attestation a = attest(tid, uid, gid, false);
        if (a == null) {
            return java.util.Optional.empty();
        }
        // The answer a process keeps for the policy in force comes with its Optional, made once.
        return a.process() != null && a.process().conclusion() instanceof Conclusion c && c.answer() == a ? c.now()
                : java.util.Optional.of(a);
    }

    /** Null when {@code mayHash} is false and a digest this policy compares is not known yet. */
    private Attestation attest(int tid, int uid, int gid, boolean mayHash) {
        ProcessInfo p;
        try {
            p = proc.attestIgnoringTracer(tid, uid, gid);
        } catch (ProcessGoneException e) {
            return new Attestation.Unidentified(null, e.getMessage());
        }
        Policy now = policy.get();
        if (comparesDigests(now)) {
            if (!mayHash && !p.exeSha256Known()) {
                return null;
            }
            // Computed here, where waiting is allowed, so that the decision after it never hashes.
            p.exeSha256();
        }
        Attestation answer = p.conclusion() instanceof Conclusion c && c.policy() == now ? c.answer() : null;
        if (answer == null) {
            answer = conclude(now, p);
            p.conclusion(new Conclusion(now, answer));
        }
        // A trace could make a permitted process open for another: refused where the workload
        // is told apart from other processes of its uid (read now, not from the cache).
        if (answer instanceof Attestation.Identified w && w.workload().refusesTraced()) {
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
        return answer;
    }

    private record DigestUse(Policy policy, boolean compared) {
    }

    private volatile DigestUse digestUse = new DigestUse(null, false);

    /** Whether {@code policy} compares executables' digests anywhere (found once per policy object). */
    private boolean comparesDigests(Policy policy) {
        DigestUse u = digestUse;
        if (u.policy() != policy) {
            boolean any = false;
            for (io.keywarden.policy.Workload w : policy.workloads()) {
                any |= !w.readers().sha256s().isEmpty();
                for (io.keywarden.policy.Selector s : w.selectors()) {
                    any |= s.kind() == io.keywarden.policy.Selector.Kind.UNIX_SHA256;
                }
            }
            u = new DigestUse(policy, any);
            digestUse = u;
        }
        return u.compared();
    }

    private static Attestation conclude(Policy policy, ProcessInfo p) {
        WorkloadMatch m = policy.match(p);
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
