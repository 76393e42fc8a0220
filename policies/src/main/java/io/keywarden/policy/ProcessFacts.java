package io.keywarden.policy;

import java.util.Optional;

/**
 * What is known about a calling process, as selectors and reader rules need it. Implementations
 * may compute the costly parts (the executable's digest) lazily, on first use.
 */
public interface ProcessFacts {

    /** The process id (the thread group id, never a thread id). */
    int pid();

    /** Effective uid. */
    int uid();

    /** Effective gid. */
    int gid();

    /** The executable as the kernel describes it (for people and the ledger), or empty. Never decides. */
    Optional<String> exe();

    /**
     * Whether the process runs the very file {@code path} names (as the daemon resolves it):
     * compared by file identity (device and inode), never by name.
     */
    boolean exeIs(String path);

    /** Lower-case hex SHA-256 of the executable, or empty when it cannot be read. */
    Optional<String> exeSha256();

    /** Kubernetes pod UID from the cgroup path, when the process runs in a pod. */
    Optional<String> podUid();

    /** Container id from the cgroup path, when the process runs in a container. */
    Optional<String> containerId();
}
