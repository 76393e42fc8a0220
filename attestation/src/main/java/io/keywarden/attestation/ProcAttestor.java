package io.keywarden.attestation;

import com.sun.jna.Memory;
import io.keywarden.linux.FileIdentity;
import io.keywarden.linux.LibC;
import io.keywarden.linux.Pidfd;
import io.keywarden.linux.ProcFiles;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Attests a process from /proc: thread id to process (Tgid), effective uid and gid, tracer,
 * the executable's identity (device, inode, size, mtime, ctime of the file {@code /proc/PID/exe}
 * refers to), cgroup (container, pod), start time. Knows nothing of policies.
 *
 * <p>Repeated opens by one thread are served from a cache, revalidated on every call by the
 * thread's identity and the executable's identity (an execve of anything else, or a rewrite of
 * the same file, changes it) — where the kernel has thread pidfds ({@link Pidfd}), both in one
 * {@code statx} of {@code exe} through a descriptor of the thread's own /proc directory, which
 * fails once that thread has ended (a reused tid is another thread's); else by its start time
 * and the executable's path — the uid and gid the kernel reported for the
 * request (a setuid changes them) and the tracer (a process traced now is attested afresh, and
 * refused by its provider), or, for {@link #attestIgnoringTracer}, by the caller where it matters.
 */
public final class ProcAttestor implements AutoCloseable {
    /** Direct-mapped by thread id (tids are handed out in sequence); a collision attests afresh. */
    private static final int SLOTS = 4096;

    /**
     * One attested thread. With a descriptor (the real /proc on Linux 6.9 and later) it keeps an
     * {@code O_PATH} descriptor of the thread's own /proc directory ({@code /proc/TID}, opened while
     * the thread's pidfd said it lived), and one {@code statx} of {@code exe} through it answers both
     * questions an open asks: it succeeds only while that thread (not a later one given its number)
     * runs, and says which file its process runs. Without one, the thread is known by its start
     * time and the executable by its path. The descriptor is closed when the entry leaves the
     * table; a reader that still holds the entry then finds it closed and attests afresh (never a
     * reused number).
     */
    private static final class Cached {
        final int tid;
        final long threadStart;
        final FileIdentity exeFile;
        final ProcessInfo process;
        /** The thread's /proc directory; -1: none (start times); -2: closed. */
        private int dir;
        /**
         * Its own statx buffer, used under its lock (made at its first revalidation): no
         * {@code ThreadLocal} lookup per open, a call into the VM for the daemon's C1 compiler.
         */
        private FileIdentity.Buffer stat;

        Cached(int tid, long threadStart, FileIdentity exeFile, ProcessInfo process, int dir) {
            this.tid = tid;
            this.threadStart = threadStart;
            this.exeFile = exeFile;
            this.process = process;
            this.dir = dir;
        }

        boolean hasDirectory() {
            return dir != -1;
        }

        /**
         * Its thread still runs and its process the same file: under the lock, so that the
         * descriptor cannot be closed (and its number given to another file) meanwhile.
         */
        synchronized boolean unchanged() {
            if (dir < 0) {
                return false;
            }
            FileIdentity.Buffer b = stat;
            if (b == null) {
                b = new FileIdentity.Buffer();
                stat = b;
            }
            return b.statx(dir, EXE_NAME, 0) == 0 && exeFile.matches(b);
        }

        synchronized void close() {
            if (dir >= 0) {
                LibC.close(dir);
            }
            dir = -2;
        }
    }

    /** "exe" and its NUL, in native memory: the name statx looks up under a thread's directory. */
    private static final Memory EXE_NAME = new Memory(4);

    static {
        EXE_NAME.write(0, new byte[] {'e', 'x', 'e', 0}, 0, 4);
    }

    /**
     * A thread's own native buffers for {@code statx(PROC/PID/exe)}, each with a view made once: no
     * string, structure or JNA call per open but the system call itself.
     */
    private static final class ExeProbe {
        final Memory path;
        final ByteBuffer pathView;
        final FileIdentity.Buffer stat = new FileIdentity.Buffer();
        final int prefix;

        ExeProbe(byte[] procSlash) {
            path = new Memory(procSlash.length + 16);
            pathView = path.getByteBuffer(0, path.size());
            pathView.put(0, procSlash);
            prefix = procSlash.length;
        }

        /** True when PROC/{@code pid}/exe is still the file {@code expected} names. */
        boolean unchanged(int pid, FileIdentity expected) {
            int at = prefix;
            int digits = 1;
            for (int v = pid; v >= 10; v /= 10) {
                digits++;
            }
            for (int i = digits - 1, v = pid; i >= 0; i--, v /= 10) {
                pathView.put(at + i, (byte) ('0' + v % 10));
            }
            at += digits;
            pathView.put(at, EXE, 0, EXE.length);
            return stat.statx(LibC.AT_FDCWD, path, 0) == 0 && expected.matches(stat);
        }

        /** "/exe" and its NUL. */
        private static final byte[] EXE = {'/', 'e', 'x', 'e', 0};
    }

    private final String proc;
    private final ExeDigests digests;
    private final CgroupFs cgroups;
    private final AtomicReferenceArray<Cached> cache = new AtomicReferenceArray<>(SLOTS);
    private final boolean pidfds;
    private final ThreadLocal<ExeProbe> probes;

    public ProcAttestor(String proc, ExeDigests digests, CgroupFs cgroups) {
        // Descriptors name threads of the kernel's own /proc; a test's fake tree has none.
        this(proc, digests, cgroups, proc.equals("/proc") && Pidfd.threadsSupported());
    }

    private ProcAttestor(String proc, ExeDigests digests, CgroupFs cgroups, boolean pidfds) {
        this.proc = proc;
        this.digests = digests;
        this.cgroups = cgroups;
        this.pidfds = pidfds;
        byte[] procSlash = (proc + "/").getBytes(StandardCharsets.UTF_8);
        this.probes = ThreadLocal.withInitial(() -> new ExeProbe(procSlash));
    }

    public static ProcAttestor system() {
        return new ProcAttestor("/proc", new ExeDigests(), CgroupFs.system());
    }

    /**
     * The real /proc with thread descriptors ({@code true}: only where the kernel has them) or
     * with start times alone ({@code false}: what kernels before 6.9 get), to compare the two.
     */
    public static ProcAttestor system(boolean threadDescriptors) {
        return new ProcAttestor("/proc", new ExeDigests(), CgroupFs.system(),
                threadDescriptors && Pidfd.threadsSupported());
    }

    /** True when cached threads are recognised by a descriptor of their own rather than a start time. */
    public boolean usesThreadDescriptors() {
        return pidfds;
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
                () -> exeFile.flatMap(f -> digests.digest(exeLink, f)), digests::known);
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
        if (tid <= 0) {
            throw new ProcessGoneException(tid, "is not a process id");
        }
        int slot = tid & (SLOTS - 1);
        Cached c = cache.get(slot);
        if (c != null && c.tid == tid && c.process.uid() == uid && c.process.gid() == gid && unchanged(c, tid)
                && (!tracer || untraced(tid, c.process.pid()))) {
            return c.process;
        }
        // The descriptor first: whatever is read below while it still names a live thread was
        // read from that thread (its number cannot have moved to another meanwhile).
        int fd = pidfds ? Pidfd.openThread(tid) : -1;
        int dir = -1;
        try {
            long threadStart = startTime(tid);
            ProcessInfo p = attest(tid);
            if (fd >= 0) {
                // Opened while the pidfd says the thread lives (checked below): its own directory.
                dir = LibC.open(proc + "/" + tid, LibC.O_PATH | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
            }
            if (startTime(tid) != threadStart || (fd >= 0 && !Pidfd.alive(fd))) {
                throw new ProcessGoneException(tid, "was replaced while being attested");
            }
            boolean cacheable = p.exeFile().isPresent() && p.tracerPid() == 0 && p.uid() == uid && p.gid() == gid;
            if (cacheable && (fd < 0 || dir >= 0)) {
                Cached old = cache.getAndSet(slot, new Cached(tid, threadStart, p.exeFile().get(), p, dir));
                dir = -1;
                if (old != null) {
                    old.close();
                }
            } else if (c != null && c.tid == tid && cache.compareAndSet(slot, c, null)) {
                c.close();
            }
            return p;
        } finally {
            if (fd >= 0) {
                LibC.close(fd);
            }
            if (dir >= 0) {
                LibC.close(dir);
            }
        }
    }

    /**
     * The cached entry still describes the thread asking now: the same thread running the same
     * file, by one statx through its directory, else by its start time and its executable's path.
     */
    private boolean unchanged(Cached c, int tid) throws ProcessGoneException {
        if (c.hasDirectory()) {
            return c.unchanged();
        }
        return startTime(tid) == c.threadStart && probes.get().unchanged(c.process.pid(), c.exeFile);
    }

    /** Closes the descriptors the cache holds; attesting afterwards still works, uncached ones reopen. */
    @Override
    public void close() {
        for (int i = 0; i < SLOTS; i++) {
            Cached c = cache.getAndSet(i, null);
            if (c != null) {
                c.close();
            }
        }
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
