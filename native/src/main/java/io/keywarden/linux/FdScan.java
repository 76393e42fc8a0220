package io.keywarden.linux;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.nio.charset.StandardCharsets;

/**
 * The processes whose descriptors include given sockets ({@code socket:[INODE]}), found by one
 * pass over {@code /proc/PID/fd}: directories read with {@code getdents64}, each descriptor's
 * link with {@code readlinkat} on the directory, names and links in native buffers, the inode read
 * from the bytes. No Java string or path per descriptor: the pass that costs a gateway request its
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
     * One pass for several sockets: for each of {@code inodes}, the pids under {@code proc} with a
     * descriptor on {@code socket:[INODE]} (each pid once), in the order of {@code inodes}. What
     * costs a pass is the walk over every descriptor, not the number of sockets looked for: the
     * gateway's concurrent requests share one.
     */
    public static int[][] socketHolders(String proc, long[] inodes) {
        int[][] found = new int[inodes.length][];
        int[] counts = new int[inodes.length];
        for (int i = 0; i < inodes.length; i++) {
            found[i] = new int[2];
        }
        Buffers b = BUFFERS.get();
        int procFd = LibC.open(proc, LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
        if (procFd >= 0) {
            try {
                long got;
                while ((got = LibC.getdents64(procFd, b.procDents, DENTS)) > 0) {
                    for (int at = 0; at < got; at += b.procDents.getShort(at + RECLEN_AT) & 0xffff) {
                        int pid = pid(b.procDents, at + NAME_AT);
                        if (pid > 0) {
                            sockets(procFd, pid, inodes, found, counts, b);
                        }
                    }
                }
            } finally {
                LibC.close(procFd);
            }
        }
        for (int i = 0; i < inodes.length; i++) {
            found[i] = java.util.Arrays.copyOf(found[i], counts[i]);
        }
        return found;
    }

    private static final byte[] SOCKET = "socket:[".getBytes(StandardCharsets.US_ASCII);

    /** Adds {@code pid} to the list of each socket in {@code inodes} one of its descriptors is on. */
    private static void sockets(int procFd, int pid, long[] inodes, int[][] found, int[] counts, Buffers b) {
        int dir = fdDir(procFd, pid, b);
        if (dir < 0) {
            return;
        }
        try {
            long got;
            while ((got = LibC.getdents64(dir, b.fdDents, DENTS)) > 0) {
                for (int at = 0; at < got; at += b.fdDents.getShort(at + RECLEN_AT) & 0xffff) {
                    if (b.fdDents.getByte(at + NAME_AT) == '.') {
                        continue;
                    }
                    long len = LibC.readlinkat(dir, b.fdDents.share(at + NAME_AT), b.link, 64);
                    long inode = len > SOCKET.length + 1 && len < 64 ? socketInode(b.link, (int) len) : -1;
                    for (int i = 0; inode >= 0 && i < inodes.length; i++) {
                        if (inodes[i] == inode && (counts[i] == 0 || found[i][counts[i] - 1] != pid)) {
                            if (counts[i] == found[i].length) {
                                found[i] = java.util.Arrays.copyOf(found[i], counts[i] * 2);
                            }
                            found[i][counts[i]++] = pid;
                        }
                    }
                }
            }
        } finally {
            LibC.close(dir);
        }
    }

    /** The inode of a {@code socket:[INODE]} link of {@code len} bytes, or -1 for any other link. */
    private static long socketInode(Memory link, int len) {
        for (int i = 0; i < SOCKET.length; i++) {
            if (link.getByte(i) != SOCKET[i]) {
                return -1;
            }
        }
        if (link.getByte(len - 1) != ']') {
            return -1;
        }
        long inode = 0;
        for (int i = SOCKET.length; i < len - 1; i++) {
            byte c = link.getByte(i);
            if (c < '0' || c > '9' || i - SOCKET.length > 18) {
                return -1;
            }
            inode = inode * 10 + (c - '0');
        }
        return inode;
    }

    /** {@code /proc/<pid>/fd} opened relative to the /proc descriptor, or -1 (gone, or not ours to read). */
    private static int fdDir(int procFd, int pid, Buffers b) {
        String rel = pid + "/fd";
        for (int i = 0; i < rel.length(); i++) {
            b.path.setByte(i, (byte) rel.charAt(i));
        }
        b.path.setByte(rel.length(), (byte) 0);
        return LibC.openat(procFd, b.path, LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
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
}
