package io.keywarden.fuse;

import com.sun.jna.Native;
import com.sun.jna.Pointer;
import io.keywarden.linux.Errno;
import io.keywarden.linux.LibC;
import io.keywarden.linux.NativeException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** The open {@code /dev/fuse} file descriptor: whole requests in, whole replies out. */
final class FuseDevice implements AutoCloseable {
    /** Enough for any request with max_write of 128 KiB (the kernel wants ≥ max(8192, 80 + max_write)). */
    static final int BUFFER_SIZE = 128 * 1024 + 4096;
    static final int MAX_WRITE = 128 * 1024;

    private final int fd;
    private volatile boolean closed;
    private final ThreadLocal<ByteBuffer> replyBuffers = ThreadLocal.withInitial(() -> direct(BUFFER_SIZE));

    private FuseDevice(int fd) {
        this.fd = fd;
    }

    static FuseDevice open() throws NativeException {
        int fd = LibC.open("/dev/fuse", LibC.O_RDWR | LibC.O_CLOEXEC, 0);
        if (fd < 0) {
            throw new NativeException("open(/dev/fuse)", Errno.last());
        }
        return new FuseDevice(fd);
    }

    /** A descriptor of /dev/fuse received from the daemon that served the connection before. */
    static FuseDevice adopt(int fd) {
        return new FuseDevice(fd);
    }

    int fd() {
        return fd;
    }

    static ByteBuffer direct(int size) {
        return ByteBuffer.allocateDirect(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    /**
     * Blocks for the next request. Returns its length, 0 to retry (EINTR, EAGAIN, ENOENT: the
     * request went away), or -1 when the connection is gone (unmounted or aborted).
     */
    int read(ByteBuffer buf, Pointer at) throws NativeException {
        long n = LibC.read(fd, at, buf.capacity());
        if (n >= 0) {
            return (int) n;
        }
        int errno = Errno.last();
        return switch (errno) {
            case Errno.EINTR, Errno.EAGAIN, Errno.ENOENT -> 0;
            case Errno.ENODEV, Errno.EBADF -> -1;
            default -> throw new NativeException("read(/dev/fuse)", errno);
        };
    }

    /** A direct buffer owned by the calling thread, for building one reply. */
    ByteBuffer replyBuffer() {
        ByteBuffer b = replyBuffers.get();
        b.clear();
        return b;
    }

    /** Writes one reply of {@code length} bytes from {@code buf}; false if the kernel no longer wants it. */
    boolean write(ByteBuffer buf, int length) throws NativeException {
        if (closed) {
            return false;
        }
        long n = LibC.write(fd, Native.getDirectBufferPointer(buf), length);
        if (n == length) {
            return true;
        }
        int errno = Errno.last();
        if (n < 0 && (errno == Errno.ENOENT || errno == Errno.ENODEV)) {
            return false;
        }
        throw new NativeException("write(/dev/fuse, " + length + " bytes)", n < 0 ? errno : Errno.EIO);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            LibC.close(fd);
        }
    }
}
