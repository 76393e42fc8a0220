package io.keywarden.linux;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.util.Optional;

/**
 * What makes a file that file, from {@code statx(2)}: device and inode name it; size, mtime and
 * ctime say whether its content may have changed (ctime cannot be set back by its owner, so an
 * in-place rewrite with a restored mtime still shows). Paths are resolved by the kernel in the
 * daemon's own mount namespace; {@code /proc/PID/exe} resolves to the very file a process runs,
 * even in another mount namespace or after it was deleted.
 */
public record FileIdentity(long dev, long ino, long size, long mtimeNanos, long ctimeNanos, int mode, int uid) {
    private static final int SIZE = 256;
    private static final ThreadLocal<Memory> BUFFERS = ThreadLocal.withInitial(() -> new Memory(SIZE));

    /** The identity of the file {@code path} names (symbolic links followed), or empty. */
    public static Optional<FileIdentity> of(String path) {
        Memory b = BUFFERS.get();
        if (LibC.statx(LibC.AT_FDCWD, path, 0, LibC.STATX_BASIC_STATS, b) != 0) {
            return Optional.empty();
        }
        return Optional.of(decode(b));
    }

    /** The identity of the file open on {@code fd}, or empty. */
    public static Optional<FileIdentity> ofFd(int fd) {
        Memory b = BUFFERS.get();
        if (LibC.statx(fd, "", LibC.AT_EMPTY_PATH, LibC.STATX_BASIC_STATS, b) != 0) {
            return Optional.empty();
        }
        return Optional.of(decode(b));
    }

    /**
     * True when the struct statx in {@code b} describes this identity (all of its fields equal):
     * the comparison of {@link #equals} read straight from native memory, allocating nothing.
     */
    public boolean matches(Pointer b) {
        return b.getLong(32) == ino && b.getLong(40) == size && (b.getShort(28) & 0xffff) == mode && b.getInt(20) == uid
                && b.getLong(96) * 1_000_000_000L + (b.getInt(104) & 0xffffffffL) == ctimeNanos
                && b.getLong(112) * 1_000_000_000L + (b.getInt(120) & 0xffffffffL) == mtimeNanos
                && (((b.getInt(136) & 0xffffffffL) << 32) | (b.getInt(140) & 0xffffffffL)) == dev;
    }

    /** Decodes a struct statx (include/uapi/linux/stat.h). */
    static FileIdentity decode(Pointer b) {
        int uid = b.getInt(20);
        int mode = b.getShort(28) & 0xffff;
        long ino = b.getLong(32);
        long size = b.getLong(40);
        long ctime = b.getLong(96) * 1_000_000_000L + (b.getInt(104) & 0xffffffffL);
        long mtime = b.getLong(112) * 1_000_000_000L + (b.getInt(120) & 0xffffffffL);
        long devMajor = b.getInt(136) & 0xffffffffL;
        long devMinor = b.getInt(140) & 0xffffffffL;
        return new FileIdentity((devMajor << 32) | devMinor, ino, size, mtime, ctime, mode, uid);
    }

    /** Same device and inode: the same file, whatever its path or content. */
    public boolean sameFile(FileIdentity o) {
        return o != null && dev == o.dev && ino == o.ino;
    }

    public boolean isRegularFile() {
        return (mode & 0170000) == 0100000;
    }

    public boolean isDirectory() {
        return (mode & 0170000) == 0040000;
    }
}
