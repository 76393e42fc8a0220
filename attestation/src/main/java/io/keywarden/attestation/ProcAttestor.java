package io.keywarden.attestation;

import io.keywarden.linux.FileIdentity;
import io.keywarden.linux.ProcFiles;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Attests a process from /proc: thread id to process (Tgid), effective uid and gid, tracer,
 * the executable's identity (device, inode, size, mtime, ctime of the file {@code /proc/PID/exe}
 * refers to), cgroup (container, pod), start time. Knows nothing of policies.
 *
 * <p>Repeated opens by one thread are served from a cache, revalidated on every call by the
 * thread's start time (a reused tid differs), the executable's identity (an execve of anything
 * else, or a rewrite of the same file, changes it), the uid and gid the kernel reported for the
 * request (a setuid changes them) and the tracer (a process traced now is attested afresh, and
 * refused by its provider), or, for {@link #attestIgnoringTracer}, by the caller where it matters.
 */
public final class ProcAttestor {
    private static final int MAX_CACHED = 16_384;

    private record Cached(long threadStart, FileIdentity exeFile, ProcessInfo process) {
    }

    private final String proc;
    private final ExeDigests digests;
    private final CgroupFs cgroups;
    private final Map<Integer, Cached> cache = new ConcurrentHashMap<>();

    public ProcAttestor(String proc, ExeDigests digests, CgroupFs cgroups) {
        this.proc = proc;
        this.digests = digests;
        this.cgroups = cgroups;
    }

    public static ProcAttestor system() {
        return new ProcAttestor("/proc", new ExeDigests(), CgroupFs.system());
    }

    /** Attests the process that thread {@code tid} belongs to, without the cache. */
    public ProcessInfo attest(int tid) throws ProcessGoneException {
        if (tid <= 0) {
            throw new ProcessGoneException(tid, "is not a process id");
        }
        String status = read(tid, "status");
        int tgid = (int) field(status, "Tgid:", 0, tid);
        int uid = (int) field(status, "Uid:", 1, tid);
        int gid = (int) field(status, "Gid:", 1, tid);
        int tracer = tracerOf(status, tid);
        long start = startTime(tgid);
        String exeLink = proc + "/" + tgid + "/exe";
        Optional<String> exe = ProcFiles.readlink(exeLink);
        Optional<FileIdentity> exeFile = FileIdentity.of(exeLink);
        if (tracer == 0 && tgid != tid) {
            tracer = tracerOf(read(tgid, "status"), tgid);
        }
        CgroupInfo cgroup = ProcFiles.read(proc + "/" + tgid + "/cgroup").map(c -> CgroupInfo.parse(c, cgroups))
                .orElse(CgroupInfo.NONE);
        ProcessInfo p = new ProcessInfo(tgid, start, uid, gid, tracer, exe, exeFile, cgroup,
                () -> exeFile.flatMap(f -> digests.digest(exeLink, f)));
        if (startTime(tgid) != start) {
            throw new ProcessGoneException(tgid, "was replaced while being attested");
        }
        return p;
    }

    /**
     * Attests thread {@code tid} whose request the kernel made with {@code uid}/{@code gid},
     * from the cache when nothing that identifies the process changed.
     */
    public ProcessInfo attest(int tid, int uid, int gid) throws ProcessGoneException {
        return attest(tid, uid, gid, true);
    }

    /**
     * {@link #attest(int, int, int)} without reading the tracer when the process is in the cache:
     * its {@code tracerPid} is then the one read when it was last attested afresh (0: only untraced
     * processes are cached). For a caller that asks {@link #tracerNow} where a trace matters; it
     * spares the ~20 µs the kernel takes to generate {@code /proc/TID/status}.
     */
    public ProcessInfo attestIgnoringTracer(int tid, int uid, int gid) throws ProcessGoneException {
        return attest(tid, uid, gid, false);
    }

    /** The tracer of thread {@code tid} or of its process {@code tgid} now (0: neither is traced). */
    public int tracerNow(int tid, int tgid) throws ProcessGoneException {
        int t = tracerOf(read(tid, "status"), tid);
        return t != 0 || tid == tgid ? t : tracerOf(read(tgid, "status"), tgid);
    }

    private ProcessInfo attest(int tid, int uid, int gid, boolean tracer) throws ProcessGoneException {
        long threadStart = startTime(tid);
        Cached c = cache.get(tid);
        if (c != null && c.threadStart == threadStart && c.process.uid() == uid && c.process.gid() == gid
                && (!tracer || untraced(tid, c.process.pid()))) {
            Optional<FileIdentity> exe = FileIdentity.of(proc + "/" + c.process.pid() + "/exe");
            if (exe.isPresent() && exe.get().equals(c.exeFile)) {
                return c.process;
            }
        }
        ProcessInfo p = attest(tid);
        if (startTime(tid) != threadStart) {
            throw new ProcessGoneException(tid, "was replaced while being attested");
        }
        if (cache.size() >= MAX_CACHED) {
            cache.clear();
        }
        if (p.exeFile().isPresent() && p.tracerPid() == 0 && p.uid() == uid && p.gid() == gid) {
            cache.put(tid, new Cached(threadStart, p.exeFile().get(), p));
        } else {
            cache.remove(tid);
        }
        return p;
    }

    private boolean untraced(int tid, int tgid) {
        try {
            return tracerOf(read(tid, "status"), tid) == 0 && (tid == tgid || tracerOf(read(tgid, "status"), tgid) == 0);
        } catch (ProcessGoneException e) {
            return false;
        }
    }

    private static int tracerOf(String status, int pid) throws ProcessGoneException {
        return status.contains("\nTracerPid:") ? (int) field(status, "TracerPid:", 0, pid) : 0;
    }

    /** True while the attested process runs: same pid and same start time (a reused pid differs). */
    public boolean isAlive(ProcessInfo p) {
        try {
            return startTime(p.pid()) == p.startTime();
        } catch (ProcessGoneException e) {
            return false;
        }
    }

    /** Field 22 of /proc/PID/stat, read after the last ')' because the command name may hold anything. */
    public long startTime(int pid) throws ProcessGoneException {
        return startTimeOf(proc, pid);
    }

    /** {@link #startTime} of the process {@code pid} under the proc root {@code proc}. */
    public static long startTimeOf(String proc, int pid) throws ProcessGoneException {
        String stat = ProcFiles.read(proc + "/" + pid + "/stat")
                .orElseThrow(() -> new ProcessGoneException(pid, "is gone (stat unreadable)"));
        int close = stat.lastIndexOf(')');
        if (close < 0 || close + 2 > stat.length()) {
            throw new ProcessGoneException(pid, "has an unreadable stat line");
        }
        // After ") ": field 3 (state) comes first, so field 22 (starttime) is the 20th.
        int at = close + 2;
        for (int field = 3; field < 22; field++) {
            at = stat.indexOf(' ', at) + 1;
            if (at == 0) {
                throw new ProcessGoneException(pid, "has a short stat line");
            }
        }
        int end = stat.indexOf(' ', at);
        try {
            return Long.parseLong(stat.substring(at, end < 0 ? stat.length() : end).trim());
        } catch (NumberFormatException e) {
            throw new ProcessGoneException(pid, "has a malformed start time");
        }
    }

    private String read(int pid, String file) throws ProcessGoneException {
        return ProcFiles.read(proc + "/" + pid + "/" + file)
                .orElseThrow(() -> new ProcessGoneException(pid, "is gone (" + file + " unreadable)"));
    }

    private static long field(String status, String name, int index, int pid) throws ProcessGoneException {
        int at = status.indexOf("\n" + name);
        if (at < 0 && !status.startsWith(name)) {
            throw new ProcessGoneException(pid, "has no " + name + " in its status");
        }
        int start = at < 0 ? name.length() : at + 1 + name.length();
        int end = status.indexOf('\n', start);
        String[] parts = status.substring(start, end < 0 ? status.length() : end).trim().split("\\s+");
        if (parts.length <= index) {
            throw new ProcessGoneException(pid, "has a short " + name + " line");
        }
        try {
            return Long.parseLong(parts[index]);
        } catch (NumberFormatException e) {
            throw new ProcessGoneException(pid, "has a malformed " + name + " line");
        }
    }
}
