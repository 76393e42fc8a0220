package io.keywarden.linux;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;

/**
 * A stream Unix socket spoken through libc, for what the JDK's channels cannot do: pass a file
 * descriptor ({@code SCM_RIGHTS}) and read the peer's pid ({@code SO_PEERCRED}). Messages are
 * frames: a 4-byte little-endian length, then that many bytes; a descriptor travels with the first
 * byte of the frame it was sent with. Frames may carry secrets: the native copies are wiped after
 * each call, and the receiver owns (and wipes) the array it gets.
 */
public final class UnixSocket implements AutoCloseable {
    /** sizeof(struct msghdr), (struct iovec), CMSG_SPACE(sizeof(int)) on LP64 Linux. */
    private static final int MSGHDR = 56;
    private static final int IOVEC = 16;
    private static final int CMSG_SPACE_INT = 24;
    private static final int CMSG_LEN_INT = 20;
    private static final int SUN_PATH = 108;
    private static final int SHUT_RDWR = 2;
    /** Received descriptors are close-on-exec at once. */
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;

    private final int fd;
    private volatile boolean closed;

    private UnixSocket(int fd) {
        this.fd = fd;
    }

    /** A frame received, and the descriptor that came with it (-1: none); the caller owns both. */
    public record Frame(byte[] data, int fd) {
    }

    private static byte[] address(Path path) throws IOException {
        byte[] p = path.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8);
        if (p.length >= SUN_PATH) {
            throw new IOException("socket path " + path + " is longer than " + (SUN_PATH - 1) + " bytes");
        }
        byte[] a = new byte[2 + SUN_PATH];
        a[0] = (byte) LibC.AF_UNIX;
        System.arraycopy(p, 0, a, 2, p.length);
        return a;
    }

    /** The descriptor (for tests that watch a thread block on it). */
    int fd() {
        return fd;
    }

    private static int newSocket() throws NativeException {
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw new NativeException("socket(AF_UNIX)", Errno.last());
        }
        return fd;
    }

    /**
     * Listens at {@code path} (a socket file left there is replaced; the directory is created),
     * mode 0600: only root (the owner) can connect, and the peer is checked again on accept.
     */
    public static UnixSocket listen(Path path) throws IOException {
        address(path);
        SafePaths.directory(path.toAbsolutePath().getParent(), SafePaths.PRIVATE, "the socket " + path);
        int[] bound = {-1};
        try {
            SafePaths.placeSocket(path, PosixFilePermissions.fromString("rw-------"), "the socket " + path, at -> {
                byte[] addr = address(at);
                int fd = newSocket();
                bound[0] = fd;
                if (LibC.bind(fd, addr, addr.length) != 0 || LibC.listen(fd, 8) != 0) {
                    throw new NativeException("bind/listen(" + path + ")", Errno.last());
                }
            });
        } catch (IOException | RuntimeException e) {
            if (bound[0] >= 0) {
                LibC.close(bound[0]);
            }
            throw e;
        }
        return new UnixSocket(bound[0]);
    }

    /** Connects to {@code path}; a {@link NativeException} with ENOENT or ECONNREFUSED means nobody listens there. */
    public static UnixSocket connect(Path path) throws IOException {
        byte[] addr = address(path);
        int fd = newSocket();
        if (LibC.connect(fd, addr, addr.length) != 0) {
            int e = Errno.last();
            LibC.close(fd);
            throw new NativeException("connect(" + path + ")", e);
        }
        return new UnixSocket(fd);
    }

    /** Waits for the next connection; fails with EINVAL once {@link #close()}d from another thread. */
    public UnixSocket accept() throws NativeException {
        while (true) {
            int c = LibC.accept4(fd, null, null, LibC.SOCK_CLOEXEC);
            if (c >= 0) {
                return new UnixSocket(c);
            }
            int e = Errno.last();
            if (e != Errno.EINTR || closed) {
                throw new NativeException("accept", e);
            }
        }
    }

    /** The peer's credentials as the kernel recorded them at {@code connect()}. */
    public PeerCred peer() throws NativeException {
        return PeerCred.of(fd);
    }

    /** Sends and receives fail with EAGAIN after {@code t} without progress. */
    public UnixSocket timeout(Duration t) throws NativeException {
        long[] tv = {t.getSeconds(), t.toNanosPart() / 1000};
        if (LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_RCVTIMEO, tv, 16) != 0
                || LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_SNDTIMEO, tv, 16) != 0) {
            throw new NativeException("setsockopt(SO_RCVTIMEO)", Errno.last());
        }
        return this;
    }

    /** Sends {@code data} as one frame, with {@code passFd} (when ≥ 0) attached to its first byte. */
    public void send(byte[] data, int passFd) throws NativeException {
        int total = 4 + data.length;
        Memory buf = new Memory(total);
        Memory msg = new Memory(MSGHDR + IOVEC + CMSG_SPACE_INT);
        try {
            buf.setInt(0, data.length);
            buf.write(4, data, 0, data.length);
            int sent = 0;
            while (sent < total) {
                msg.clear();
                Pointer iov = msg.share(MSGHDR);
                iov.setPointer(0, buf.share(sent));
                iov.setLong(8, total - sent);
                msg.setPointer(16, iov);
                msg.setLong(24, 1);
                if (sent == 0 && passFd >= 0) {
                    Pointer cmsg = msg.share(MSGHDR + IOVEC);
                    cmsg.setLong(0, CMSG_LEN_INT);
                    cmsg.setInt(8, LibC.SOL_SOCKET);
                    cmsg.setInt(12, LibC.SCM_RIGHTS);
                    cmsg.setInt(16, passFd);
                    msg.setPointer(32, cmsg);
                    msg.setLong(40, CMSG_SPACE_INT);
                }
                long n = LibC.sendmsg(fd, msg, LibC.MSG_NOSIGNAL);
                if (n < 0) {
                    int e = Errno.last();
                    if (e == Errno.EINTR) {
                        continue;
                    }
                    throw new NativeException("sendmsg", e);
                }
                sent += (int) n;
            }
        } finally {
            buf.clear();
            buf.close();
            msg.close();
        }
    }

    /**
     * Receives one frame of at most {@code max} bytes; a descriptor sent with it is returned (the
     * caller closes it). Fails on end of stream, a timeout (EAGAIN) or an oversized frame.
     */
    public Frame receive(int max) throws IOException {
        Memory head = new Memory(4);
        Memory msg = new Memory(MSGHDR + IOVEC + CMSG_SPACE_INT);
        int passed = -1;
        int got = 0;
        try {
            while (got < 4) {
                msg.clear();
                Pointer iov = msg.share(MSGHDR);
                iov.setPointer(0, head.share(got));
                iov.setLong(8, 4 - got);
                msg.setPointer(16, iov);
                msg.setLong(24, 1);
                msg.setPointer(32, msg.share(MSGHDR + IOVEC));
                msg.setLong(40, CMSG_SPACE_INT);
                long n = LibC.recvmsg(fd, msg, MSG_CMSG_CLOEXEC);
                if (n < 0) {
                    int e = Errno.last();
                    if (e == Errno.EINTR) {
                        continue;
                    }
                    throw new NativeException("recvmsg", e);
                }
                if (n == 0) {
                    throw new IOException("the peer closed the connection");
                }
                Pointer cmsg = msg.share(MSGHDR + IOVEC);
                if (msg.getLong(40) >= CMSG_LEN_INT && cmsg.getInt(8) == LibC.SOL_SOCKET
                        && cmsg.getInt(12) == LibC.SCM_RIGHTS) {
                    if (passed >= 0) {
                        LibC.close(passed);
                    }
                    passed = cmsg.getInt(16);
                }
                if ((msg.getInt(48) & LibC.MSG_CTRUNC) != 0) {
                    throw new IOException("more descriptors than one came with the frame");
                }
                got += (int) n;
            }
            int length = head.getInt(0);
            if (length < 0 || length > max) {
                throw new IOException("a frame of " + Integer.toUnsignedString(length) + " bytes (at most " + max + ")");
            }
            byte[] data = new byte[length];
            readFully(data);
            Frame f = new Frame(data, passed);
            passed = -1;
            return f;
        } finally {
            if (passed >= 0) {
                LibC.close(passed);
            }
            head.close();
            msg.close();
        }
    }

    private void readFully(byte[] data) throws IOException {
        int off = 0;
        byte[] chunk = new byte[Math.min(data.length, 64 * 1024)];
        try {
            while (off < data.length) {
                long n = LibC.recv(fd, chunk, Math.min(chunk.length, data.length - off), 0);
                if (n < 0) {
                    int e = Errno.last();
                    if (e == Errno.EINTR) {
                        continue;
                    }
                    throw new NativeException("recv", e);
                }
                if (n == 0) {
                    throw new IOException("the peer closed the connection mid-frame (" + off + " of " + data.length + " bytes)");
                }
                System.arraycopy(chunk, 0, data, off, (int) n);
                off += (int) n;
            }
        } finally {
            java.util.Arrays.fill(chunk, (byte) 0);
        }
    }

    /** Shuts the socket down (waking a thread in {@link #accept}) and closes it. Safe twice. */
    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            LibC.shutdown(fd, SHUT_RDWR);
            LibC.close(fd);
        }
    }
}
