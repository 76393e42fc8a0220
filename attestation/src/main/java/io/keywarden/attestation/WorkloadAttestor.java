package io.keywarden.attestation;

/**
 * "Who is this caller?" — what KeyFS and the lifecycle ask, whichever identity provider answers
 * (the dev provider's selector matching, or SPIRE). Blocking: never call on an event loop.
 */
public interface WorkloadAttestor {

    /** Attests the process of thread {@code tid}; uid and gid are the caller's as the kernel saw them. */
    Attestation attest(int tid, int uid, int gid);

    /** True while the process attested earlier still runs (pid and start time unchanged). */
    boolean isAlive(ProcessInfo process);
}
