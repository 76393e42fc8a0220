package io.keywarden.linux;

/**
 * What the daemon does to itself at start so its memory (live keys) cannot be read through a core
 * dump or by a process of its own uid: no core file ({@code RLIMIT_CORE} 0) and not dumpable
 * ({@code PR_SET_DUMPABLE} 0, which also makes {@code /proc/PID/mem}, {@code environ} and ptrace
 * root-only for it). Root on the node can still read its memory.
 */
public final class ProcessHardening {
    private ProcessHardening() {
    }

    /** Applies both; returns a description of anything that could not be applied (empty when all held). */
    public static String apply() {
        StringBuilder problems = new StringBuilder();
        if (LibC.setrlimit(LibC.RLIMIT_CORE, new long[] {0, 0}) != 0) {
            problems.append("setrlimit(RLIMIT_CORE, 0) failed: ").append(Errno.name(Errno.last())).append("; ");
        }
        if (LibC.prctl(LibC.PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
            problems.append("prctl(PR_SET_DUMPABLE, 0) failed: ").append(Errno.name(Errno.last()));
        }
        return problems.toString();
    }

    public static boolean dumpable() {
        return LibC.prctl(LibC.PR_GET_DUMPABLE, 0, 0, 0, 0) != 0;
    }
}
