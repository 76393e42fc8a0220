package io.keywarden.attestation;

/**
 * "Who is this caller?" — what KeyFS and the lifecycle ask, whichever identity provider answers
 * (the dev provider's selector matching, or SPIRE). Blocking: never call on an event loop.
 */
public interface WorkloadAttestor {

    /** Attests the process of thread {@code tid}; uid and gid are the caller's as the kernel saw them. */
    Attestation attest(int tid, int uid, int gid);

    /**
     * The attestation when it can be had without waiting on anything outside this host's /proc
     * (a FUSE worker may call this); empty when it would have to ask someone (SPIRE, for a process
     * it has not seen), and the caller then runs {@link #attest} on a thread that may block.
     */
    default java.util.Optional<Attestation> attestWithoutWaiting(int tid, int uid, int gid) {
        return java.util.Optional.of(attest(tid, uid, gid));
    }

    /** True while the process attested earlier still runs (pid and start time unchanged). */
    boolean isAlive(ProcessInfo process);
}
