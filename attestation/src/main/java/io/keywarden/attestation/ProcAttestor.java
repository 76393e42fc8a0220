package io.keywarden.attestation;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Attests a process from /proc: thread id to process (Tgid), effective uid and gid, canonical
 * executable path, cgroup (container, pod), start time. Knows nothing of policies.
 */
public final class ProcAttestor {
    private final Path proc;
    private final ExeDigests digests;

    public ProcAttestor(Path proc, ExeDigests digests) {
        this.proc = proc;
        this.digests = digests;
    }

    public static ProcAttestor system() {
        return new ProcAttestor(Path.of("/proc"), new ExeDigests());
    }

    /** Attests the process that thread {@code tid} belongs to. */
    public ProcessInfo attest(int tid) throws ProcessGoneException {
        if (tid <= 0) {
            throw new ProcessGoneException(tid, "is not a process id");
        }
        String status = read(tid, "status");
        int tgid = (int) field(status, "Tgid:", 0, tid);
        int uid = (int) field(status, "Uid:", 1, tid);
        int gid = (int) field(status, "Gid:", 1, tid);
        long start = startTime(tgid);
        Path exeLink = proc.resolve(Integer.toString(tgid)).resolve("exe");
        Optional<String> exe = exePath(exeLink);
        CgroupInfo cgroup;
        try {
            cgroup = CgroupInfo.parse(read(tgid, "cgroup"));
        } catch (ProcessGoneException e) {
            cgroup = CgroupInfo.NONE;
        }
        ProcessInfo p = new ProcessInfo(tgid, start, uid, gid, exe, cgroup, () -> digests.digest(exeLink));
        if (startTime(tgid) != start) {
            throw new ProcessGoneException(tgid, "was replaced while being attested");
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
        if (close < 0) {
            throw new ProcessGoneException(pid, "has an unreadable stat line");
        }
        String[] f = stat.substring(close + 2).split(" ");
        // After ")": field 3 (state) is f[0], so field 22 (starttime) is f[19].
        if (f.length < 20) {
            throw new ProcessGoneException(pid, "has a short stat line");
        }
        return Long.parseLong(f[19]);
    }

    private Optional<String> exePath(Path link) {
        try {
            String target = Files.readSymbolicLink(link).toString();
            if (target.endsWith(" (deleted)")) {
                target = target.substring(0, target.length() - " (deleted)".length());
            }
            return Optional.of(target);
        } catch (IOException | UnsupportedOperationException e) {
            return Optional.empty();
        }
    }

    private String read(int pid, String file) throws ProcessGoneException {
        try {
            return new String(Files.readAllBytes(proc.resolve(Integer.toString(pid)).resolve(file)), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ProcessGoneException(pid, "is gone (" + file + " unreadable)");
        }
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
        return Long.parseLong(parts[index]);
    }
}
