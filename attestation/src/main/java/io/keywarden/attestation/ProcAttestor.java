package io.keywarden.attestation;

import io.keywarden.linux.ProcFiles;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Attests a process from /proc: thread id to process (Tgid), effective uid and gid, canonical
 * executable path, cgroup (container, pod), start time. Knows nothing of policies.
 *
 * <p>Repeated opens by one thread are served from a cache, revalidated on every call by the
 * thread's start time (a reused tid differs), the executable link (an execve changes it) and the
 * uid and gid the kernel reported for the request (a setuid changes them).
 */
public final class ProcAttestor {
    private static final int MAX_CACHED = 16_384;

    private record Cached(long threadStart, String exeLink, ProcessInfo process) {
    }

    private final String proc;
    private final ExeDigests digests;
    private final Map<Integer, Cached> cache = new ConcurrentHashMap<>();

    public ProcAttestor(String proc, ExeDigests digests) {
        this.proc = proc;
        this.digests = digests;
    }

    public static ProcAttestor system() {
        return new ProcAttestor("/proc", new ExeDigests());
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
        long start = startTime(tgid);
        String exeLink = proc + "/" + tgid + "/exe";
        Optional<String> exe = ProcFiles.readlink(exeLink).map(ProcAttestor::undeleted);
        CgroupInfo cgroup = ProcFiles.read(proc + "/" + tgid + "/cgroup").map(CgroupInfo::parse).orElse(CgroupInfo.NONE);
        ProcessInfo p = new ProcessInfo(tgid, start, uid, gid, exe, cgroup, () -> digests.digest(Path.of(exeLink)));
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
        long threadStart = startTime(tid);
        Cached c = cache.get(tid);
        if (c != null && c.threadStart == threadStart && c.process.uid() == uid && c.process.gid() == gid) {
            Optional<String> exe = ProcFiles.readlink(proc + "/" + c.process.pid() + "/exe");
            if (exe.isPresent() && exe.get().equals(c.exeLink)) {
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
        Optional<String> link = ProcFiles.readlink(proc + "/" + p.pid() + "/exe");
        if (link.isPresent() && p.uid() == uid && p.gid() == gid) {
            cache.put(tid, new Cached(threadStart, link.get(), p));
        }
        return p;
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
        String stat = read(pid, "stat");
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

    private static String undeleted(String target) {
        return target.endsWith(" (deleted)") ? target.substring(0, target.length() - " (deleted)".length()) : target;
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
