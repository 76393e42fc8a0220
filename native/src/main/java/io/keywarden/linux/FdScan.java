package io.keywarden.linux;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.nio.charset.StandardCharsets;

/**
 * The processes whose descriptors include one given link target ({@code socket:[INODE]}), found by
 * one pass over {@code /proc/PID/fd}: directories read with {@code getdents64}, each descriptor's
 * link with {@code readlinkat} on the directory, names and links in native buffers, compared as
 * bytes. No Java string or path per descriptor: the pass that costs a gateway request its
 * milliseconds when written with {@code File.list} and {@code readlink} of built paths.
 *
 * <p>What it finds is a candidate: the caller re-reads who holds it with their start times (a
 * process may exit, and its pid be reused, during the pass).
 */
public final class FdScan {
    private static final int DENTS = 32 * 1024;
    /** linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name. */
    private static final int RECLEN_AT = 16;
    private static final int NAME_AT = 19;

    private static final ThreadLocal<Buffers> BUFFERS = ThreadLocal.withInitial(Buffers::new);

    private static final class Buffers {
        final Memory procDents = new Memory(DENTS);
        final Memory fdDents = new Memory(DENTS);
        final Memory path = new Memory(64);
        final Memory link = new Memory(64);
    }

    private FdScan() {
    }

    /**
     * The pids under {@code proc} (e.g. {@code /proc}) with a descriptor whose link reads exactly
     * {@code target}, in no particular order; processes whose descriptors this process may not read
     * are not seen.
     */
    public static int[] holders(String proc, String target) {
        byte[] want = target.getBytes(StandardCharsets.US_ASCII);
        Buffers b = BUFFERS.get();
        int procFd = LibC.open(proc, LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
        if (procFd < 0) {
            return new int[0];
        }
        int[] found = new int[4];
        int n = 0;
        try {
            long got;
            while ((got = LibC.getdents64(procFd, b.procDents, DENTS)) > 0) {
                for (int at = 0; at < got; at += b.procDents.getShort(at + RECLEN_AT) & 0xffff) {
                    int pid = pid(b.procDents, at + NAME_AT);
                    if (pid > 0 && holds(procFd, pid, want, b)) {
                        if (n == found.length) {
                            found = java.util.Arrays.copyOf(found, n * 2);
                        }
                        found[n++] = pid;
                    }
                }
            }
        } finally {
            LibC.close(procFd);
        }
        return java.util.Arrays.copyOf(found, n);
    }

    /** The pid a /proc entry's name spells, or -1 for any other name. */
    private static int pid(Memory dents, long name) {
        int pid = 0;
        int i = 0;
        for (byte c; (c = dents.getByte(name + i)) != 0; i++) {
            if (c < '0' || c > '9' || i > 9) {
                return -1;
            }
            pid = pid * 10 + (c - '0');
        }
        return i == 0 ? -1 : pid;
    }

    private static boolean holds(int procFd, int pid, byte[] want, Buffers b) {
        // "<pid>/fd", NUL-terminated, relative to /proc.
        String rel = pid + "/fd";
        for (int i = 0; i < rel.length(); i++) {
            b.path.setByte(i, (byte) rel.charAt(i));
        }
        b.path.setByte(rel.length(), (byte) 0);
        int dir = LibC.openat(procFd, b.path, LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
        if (dir < 0) {
            return false;   // gone, or not ours to read
        }
        try {
            long got;
            while ((got = LibC.getdents64(dir, b.fdDents, DENTS)) > 0) {
                for (int at = 0; at < got; at += b.fdDents.getShort(at + RECLEN_AT) & 0xffff) {
                    if (b.fdDents.getByte(at + NAME_AT) == '.') {
                        continue;
                    }
                    long len = LibC.readlinkat(dir, b.fdDents.share(at + NAME_AT), b.link, 64);
                    if (len == want.length && same(b.link, want)) {
                        return true;
                    }
                }
            }
            return false;
        } finally {
            LibC.close(dir);
        }
    }

    private static boolean same(Memory link, byte[] want) {
        for (int i = want.length - 1; i >= 0; i--) {
            if (link.getByte(i) != want[i]) {
                return false;
            }
        }
        return true;
    }
}
