package io.keywarden.linux;

import com.sun.jna.Memory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;

/**
 * What makes a file that file, from {@code statx(2)}: device and inode name it; size, mtime and
 * ctime say whether its content may have changed (ctime cannot be set back by its owner, so an
 * in-place rewrite with a restored mtime still shows). Paths are resolved by the kernel in the
 * daemon's own mount namespace; {@code /proc/PID/exe} resolves to the very file a process runs,
 * even in another mount namespace or after it was deleted.
 */
public record FileIdentity(long dev, long ino, long size, long mtimeNanos, long ctimeNanos, int mode, int uid) {
    private static final ThreadLocal<Buffer> BUFFERS = ThreadLocal.withInitial(Buffer::new);

    /**
     * Native memory for one {@code struct statx} (256 bytes, the same layout on every architecture)
     * and a view of it made once: its fields are read as plain memory accesses, not a JNA call each.
     */
    public static final class Buffer {
        public static final int SIZE = 256;
        final Memory memory = new Memory(SIZE);
        final ByteBuffer view = memory.getByteBuffer(0, SIZE).order(ByteOrder.nativeOrder());

        /** {@code statx(dirfd, path, flags, STATX_BASIC_STATS)} into this buffer; 0 or -1 with errno. */
        public int statx(int dirfd, com.sun.jna.Pointer path, int flags) {
            return LibC.statx(dirfd, path, flags, LibC.STATX_BASIC_STATS, memory);
        }

        int statx(int dirfd, String path, int flags) {
            return LibC.statx(dirfd, path, flags, LibC.STATX_BASIC_STATS, memory);
        }
    }

    /** The identity of the file {@code path} names (symbolic links followed), or empty. */
    public static Optional<FileIdentity> of(String path) {
        Buffer b = BUFFERS.get();
        if (b.statx(LibC.AT_FDCWD, path, 0) != 0) {
            return Optional.empty();
        }
        return Optional.of(decode(b.view));
    }

    /** The identity of the file open on {@code fd}, or empty. */
    public static Optional<FileIdentity> ofFd(int fd) {
        Buffer b = BUFFERS.get();
        if (b.statx(fd, "", LibC.AT_EMPTY_PATH) != 0) {
            return Optional.empty();
        }
        return Optional.of(decode(b.view));
    }

    /**
     * True when the struct statx last read into {@code buffer} describes this identity (all of its
     * fields equal): the comparison of {@link #equals} read straight from native memory, allocating nothing.
     */
    public boolean matches(Buffer buffer) {
        ByteBuffer b = buffer.view;
        return b.getLong(32) == ino && b.getLong(40) == size && (b.getShort(28) & 0xffff) == mode && b.getInt(20) == uid
                && b.getLong(96) * 1_000_000_000L + (b.getInt(104) & 0xffffffffL) == ctimeNanos
                && b.getLong(112) * 1_000_000_000L + (b.getInt(120) & 0xffffffffL) == mtimeNanos
                && (((b.getInt(136) & 0xffffffffL) << 32) | (b.getInt(140) & 0xffffffffL)) == dev;
    }

    /** Decodes a struct statx (include/uapi/linux/stat.h). */
    static FileIdentity decode(ByteBuffer b) {
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
