package io.keywarden.attestation;

import io.keywarden.linux.FileIdentity;
import io.keywarden.policy.ProcessFacts;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * An attested process. {@code startTime} (clock ticks since boot, from /proc/PID/stat) identifies
 * it together with the pid, so a reused pid is never mistaken for it. Its executable is known by
 * identity ({@link FileIdentity} of {@code /proc/PID/exe}), not by name; {@link #exe()} is the
 * kernel's description of it, for people. The executable's digest is computed on first use only.
 */
public final class ProcessInfo implements ProcessFacts {
    private final int pid;
    private final long startTime;
    private final int uid;
    private final int gid;
    private final int tracerPid;
    private final Optional<String> exe;
    private final Optional<FileIdentity> exeFile;
    private final CgroupInfo cgroup;
    private final Supplier<Optional<String>> digest;
    private final java.util.function.Predicate<FileIdentity> digestKnown;
    private volatile Optional<String> sha256;
    /** What an attestor concluded about this process under one policy (see {@link SelectorAttestor}). */
    private volatile Object conclusion;

    public ProcessInfo(int pid, long startTime, int uid, int gid, int tracerPid, Optional<String> exe,
                       Optional<FileIdentity> exeFile, CgroupInfo cgroup, Supplier<Optional<String>> digest) {
        this(pid, startTime, uid, gid, tracerPid, exe, exeFile, cgroup, digest, f -> false);
    }

    /** {@code digestKnown}: whether {@code digest} can answer for an executable without reading it (a cache hit). */
    public ProcessInfo(int pid, long startTime, int uid, int gid, int tracerPid, Optional<String> exe,
                       Optional<FileIdentity> exeFile, CgroupInfo cgroup, Supplier<Optional<String>> digest,
                       java.util.function.Predicate<FileIdentity> digestKnown) {
        this.digestKnown = digestKnown;
        this.pid = pid;
        this.startTime = startTime;
        this.uid = uid;
        this.gid = gid;
        this.tracerPid = tracerPid;
        this.exe = exe;
        this.exeFile = exeFile;
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

    /** The pid of the process tracing the opening thread or its process when attested, 0 when none. */
    public int tracerPid() {
        return tracerPid;
    }

    /** The link text of {@code /proc/PID/exe} (may end in " (deleted)"): a description, never a decision. */
    @Override
    public Optional<String> exe() {
        return exe;
    }

    public Optional<FileIdentity> exeFile() {
        return exeFile;
    }

    /**
     * Whether this process runs the file that {@code path} names in the daemon's mount namespace
     * right now (same device and inode). A bind mount in the caller's namespace, a copy, a rename
     * over the path after the process started, or a file merely named like it, all differ.
     */
    @Override
    public boolean exeIs(String path) {
        if (exeFile.isEmpty()) {
            return false;
        }
        return FileIdentity.of(path).map(f -> f.isRegularFile() && f.sameFile(exeFile.get())).orElse(false);
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

    /**
     * True when {@link #exeSha256} answers without hashing the executable (asked before, or the
     * same file hashed for another process): a thread that must not block for the length of a
     * binary's read (a FUSE worker, a ring, the gateway's event loop) asks this first.
     */
    public boolean exeSha256Known() {
        return sha256 != null || exeFile.isEmpty() || digestKnown.test(exeFile.get());
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

    /**
     * What the identity provider concluded about this process, kept with it by that provider (the
     * process's facts do not change while it is cached: a change attests a new one).
     */
    public Object conclusion() {
        return conclusion;
    }

    public void conclusion(Object c) {
        conclusion = c;
    }
}
