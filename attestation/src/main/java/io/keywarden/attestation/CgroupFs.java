package io.keywarden.attestation;

import io.keywarden.linux.FileIdentity;
import io.keywarden.linux.ProcFiles;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Where cgroup directories are (from {@code /proc/self/mountinfo}) and whether one is owned by
 * root: a cgroup a user was delegated (systemd {@code Delegate=}, a chowned directory) is the
 * user's to name, so it cannot vouch for a pod or a container; so is one whose {@code cgroup.procs}
 * (or {@code tasks}) another user may write.
 */
@FunctionalInterface
public interface CgroupFs {

    /** Whether the cgroup {@code path} of hierarchy {@code controllers} ("" for v2) is a root-owned directory. */
    boolean rootOwned(String controllers, String path);

    /**
     * Whether only root can move processes into a cgroup through {@code file} ({@code cgroup.procs}
     * or v1's {@code tasks}): absent, or owned by root and writable by neither its group nor others.
     * A root-owned cgroup whose {@code cgroup.procs} was handed to a user ({@code cgcreate -t}) lets
     * that user put any process of theirs in it.
     */
    static boolean onlyRootMoves(String file) {
        if (!new java.io.File(file).exists()) {
            return true;
        }
        return FileIdentity.of(file).map(f -> f.uid() == 0 && (f.mode() & 0022) == 0).orElse(false);
    }

    /** The host's cgroup file systems as this process sees them. */
    static CgroupFs system() {
        record Mount(String point, boolean v2, Set<String> options) {
        }
        List<Mount> mounts = new ArrayList<>();
        for (String line : ProcFiles.read("/proc/self/mountinfo").orElse("").split("\n")) {
            int dash = line.indexOf(" - ");
            String[] left = line.split(" ");
            if (dash < 0 || left.length < 5) {
                continue;
            }
            String[] right = line.substring(dash + 3).split(" ");
            if (right.length < 3 || !(right[0].equals("cgroup") || right[0].equals("cgroup2"))) {
                continue;
            }
            mounts.add(new Mount(left[4].replace("\\040", " "), right[0].equals("cgroup2"), Set.of(right[2].split(","))));
        }
        return (controllers, path) -> {
            if (path.contains("/../") || path.endsWith("/..")) {
                return false;
            }
            for (Mount m : mounts) {
                boolean fits = controllers.isEmpty() ? m.v2()
                        : !m.v2() && m.options().containsAll(Set.of(controllers.split(",")));
                if (fits) {
                    String dir = m.point() + path;
                    return FileIdentity.of(dir).map(f -> f.isDirectory() && f.uid() == 0).orElse(false)
                            && onlyRootMoves(dir + "/cgroup.procs") && onlyRootMoves(dir + "/tasks");
                }
            }
            return false;
        };
    }
}
