package io.keywarden.attestation;

import io.keywarden.policy.ProcessFacts;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * An attested process. {@code startTime} (clock ticks since boot, from /proc/PID/stat) identifies
 * it together with the pid, so a reused pid is never mistaken for it. The executable's digest is
 * computed on first use only.
 */
public final class ProcessInfo implements ProcessFacts {
    private final int pid;
    private final long startTime;
    private final int uid;
    private final int gid;
    private final Optional<String> exe;
    private final CgroupInfo cgroup;
    private final Supplier<Optional<String>> digest;
    private volatile Optional<String> sha256;

    public ProcessInfo(int pid, long startTime, int uid, int gid, Optional<String> exe, CgroupInfo cgroup,
                       Supplier<Optional<String>> digest) {
        this.pid = pid;
        this.startTime = startTime;
        this.uid = uid;
        this.gid = gid;
        this.exe = exe;
        this.cgroup = cgroup;
        this.digest = digest;
    }

    @Override
    public int pid() {
        return pid;
    }

    public long startTime() {
        return startTime;
    }

    @Override
    public int uid() {
        return uid;
    }

    @Override
    public int gid() {
        return gid;
    }

    @Override
    public Optional<String> exe() {
        return exe;
    }

    @Override
    public Optional<String> exeSha256() {
        Optional<String> s = sha256;
        if (s == null) {
            s = digest.get();
            sha256 = s;
        }
        return s;
    }

    @Override
    public Optional<String> podUid() {
        return cgroup.podUid();
    }

    @Override
    public Optional<String> containerId() {
        return cgroup.containerId();
    }

    @Override
    public String toString() {
        return "pid " + pid + " uid " + Integer.toUnsignedString(uid) + " exe " + exe.orElse("?");
    }
}
