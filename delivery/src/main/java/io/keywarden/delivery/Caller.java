package io.keywarden.delivery;

/**
 * Who asks, as the front end saw it: a thread id (FUSE request) or process id (SO_PEERCRED, a TCP
 * peer), and the uid and gid the kernel reported. Attestation turns it into a workload.
 */
public record Caller(int tid, int uid, int gid) {
}
