package io.keywarden.linux;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * Non-blocking stream Unix sockets that say, for every chunk received, which process wrote it:
 * {@code SO_PASSCRED} makes the kernel attach the writer's pid, uid and gid to each message and
 * never join the bytes of two writers in one read; {@code SO_PASSPIDFD} (Linux 6.5) adds a
 * descriptor of the writing process ({@code SCM_PIDFD}), which no later process can inherit the
 * number of. Both are set on the listening socket, so an accepted socket has them from its first
 * byte (a message sent before {@code accept} carries them too).
 *
 * <p>A {@link Receiver} owns its native buffers (one per thread); the data it returns is valid
 * until its next {@link Receiver#receive}.
 */
public final class WriterSocket {
    /** sizeof(struct msghdr), (struct iovec) on LP64 Linux. */
    private static final int MSGHDR = 56;
    private static final int IOVEC = 16;
    private static final int SUN_PATH = 108;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    /** Room for the credentials and the pidfd, and for descriptors a hostile writer sends (closed at once). */
    private static final int CONTROL = 512;
    /** What {@link #accept} and {@link #send} return when the call would block. */
    public static final int AGAIN = -1;

    private WriterSocket() {
    }

    /** True when this kernel hands out the writer's pidfd with each message (6.5 and later). */
    public static boolean supported() {
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return false;
        }
        try {
            return LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_PASSPIDFD, new long[] {1}, 4) == 0;
        } finally {
            LibC.close(fd);
        }
    }

    private static byte[] address(Path path) throws NativeException {
        byte[] p = path.toAbsolutePath().toString().getBytes(StandardCharsets.UTF_8);
        if (p.length >= SUN_PATH) {
            throw new NativeException("socket path " + path + " is longer than " + (SUN_PATH - 1) + " bytes", Errno.EINVAL);
        }
        byte[] a = new byte[2 + SUN_PATH];
        a[0] = (byte) LibC.AF_UNIX;
        System.arraycopy(p, 0, a, 2, p.length);
        return a;
    }

    private static int socket() throws NativeException {
        int fd = LibC.socket(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK, 0);
        if (fd < 0) {
            throw new NativeException("socket(AF_UNIX)", Errno.last());
        }
        return fd;
    }

    /** A non-blocking socket listening at {@code path} whose connections say who wrote each chunk. */
    public static int listen(Path path, int backlog) throws NativeException {
        byte[] addr = address(path);
        int fd = socket();
        long[] on = {1};
        if (LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_PASSCRED, on, 4) != 0
                || LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_PASSPIDFD, on, 4) != 0
                || LibC.bind(fd, addr, addr.length) != 0 || LibC.listen(fd, backlog) != 0) {
            int e = Errno.last();
            LibC.close(fd);
            throw new NativeException("listen(" + path + ")", e);
        }
        return fd;
    }

    /** The next waiting connection (non-blocking, close-on-exec), or {@link #AGAIN}. */
    public static int accept(int listening) throws NativeException {
        while (true) {
            int c = LibC.accept4(listening, null, null, LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK);
            if (c >= 0) {
                return c;
            }
            int e = Errno.last();
            if (e == Errno.EAGAIN) {
                return AGAIN;
            }
            if (e != Errno.EINTR && e != Errno.ECONNABORTED) {
                throw new NativeException("accept", e);
            }
        }
    }

    /** A new non-blocking stream Unix socket, not connected yet (its {@link #inode} is known already). */
    public static int open() throws NativeException {
        return socket();
    }

    /**
     * Connects {@code fd} to {@code path} (a listener of this process, with room in its backlog);
     * the caller closes {@code fd} when this throws.
     */
    public static void connect(int fd, Path path) throws NativeException {
        byte[] addr = address(path);
        if (LibC.connect(fd, addr, addr.length) != 0) {
            throw new NativeException("connect(" + path + ")", Errno.last());
        }
    }

    /** A non-blocking socket connected to {@code path}. */
    public static int connect(Path path) throws NativeException {
        int fd = socket();
        try {
            connect(fd, path);
        } catch (NativeException e) {
            LibC.close(fd);
            throw e;
        }
        return fd;
    }

    /** Stops (or restarts) the pidfd per message on {@code fd}, once the writer is known. */
    public static void passPidfd(int fd, boolean on) {
        LibC.setsockopt(fd, LibC.SOL_SOCKET, LibC.SO_PASSPIDFD, new long[] {on ? 1 : 0}, 4);
    }

    /** The inode of socket {@code fd} (what {@code unix_diag} names its peer by), or -1. */
    public static long inode(int fd) {
        try (Memory b = new Memory(256)) {
            return LibC.statx(fd, "", LibC.AT_EMPTY_PATH, LibC.STATX_BASIC_STATS, b) == 0 ? b.getLong(32) : -1;
        }
    }

    /** Sends up to {@code n} bytes without blocking: the count sent, {@link #AGAIN}, or throws. */
    public static long send(int fd, Pointer data, long n) throws NativeException {
        while (true) {
            long sent = LibC.send(fd, data, n, LibC.MSG_NOSIGNAL | LibC.MSG_DONTWAIT);
            if (sent >= 0) {
                return sent;
            }
            int e = Errno.last();
            if (e == Errno.EAGAIN) {
                return AGAIN;
            }
            if (e != Errno.EINTR) {
                throw new NativeException("send", e);
            }
        }
    }

    /**
     * Reads chunks and who wrote them, into buffers of its own. After {@link #receive}: {@link #pid},
     * {@link #uid}, {@link #gid} of the writer (pid 0: the kernel named none, the writer is in a pid
     * namespace this process cannot see), {@link #pidfd} (a descriptor the caller now owns, or -1
     * when none came, or minus the errno the kernel had making it: the writer was already gone), and
     * {@link #descriptorsSent} (the writer passed descriptors: they are closed here).
     */
    public static final class Receiver implements AutoCloseable {
        private final Memory msg = new Memory(MSGHDR + IOVEC + CONTROL);
        private final Memory data;
        private final int capacity;
        private int pid;
        private int uid;
        private int gid;
        private int pidfd;
        private boolean descriptorsSent;
        private boolean truncated;

        public Receiver(int capacity) {
            this.capacity = capacity;
            this.data = new Memory(capacity);
        }

        /** The bytes of the last chunk. */
        public Pointer data() {
            return data;
        }

        public int pid() {
            return pid;
        }

        public int uid() {
            return uid;
        }

        public int gid() {
            return gid;
        }

        public int pidfd() {
            return pidfd;
        }

        public boolean descriptorsSent() {
            return descriptorsSent;
        }

        /** The kernel had more to say than fitted (the credentials may be missing). */
        public boolean truncated() {
            return truncated;
        }

        /**
         * One chunk from {@code fd}: its length (0: the writer closed its end), or {@link #AGAIN};
         * throws on a socket error.
         */
        public long receive(int fd) throws NativeException {
            pid = 0;
            uid = -1;
            gid = -1;
            pidfd = -1;
            descriptorsSent = false;
            truncated = false;
            Pointer iov = msg.share(MSGHDR);
            iov.setPointer(0, data);
            iov.setLong(8, capacity);
            msg.setPointer(0, null);
            msg.setInt(8, 0);
            msg.setPointer(16, iov);
            msg.setLong(24, 1);
            msg.setPointer(32, msg.share(MSGHDR + IOVEC));
            msg.setLong(40, CONTROL);
            msg.setInt(48, 0);
            long n;
            while (true) {
                n = LibC.recvmsg(fd, msg, MSG_CMSG_CLOEXEC | LibC.MSG_DONTWAIT);
                if (n >= 0) {
                    break;
                }
                int e = Errno.last();
                if (e == Errno.EAGAIN) {
                    return AGAIN;
                }
                if (e != Errno.EINTR) {
                    throw new NativeException("recvmsg", e);
                }
            }
            truncated = (msg.getInt(48) & LibC.MSG_CTRUNC) != 0;
            long controlLen = msg.getLong(40);
            Pointer control = msg.share(MSGHDR + IOVEC);
            long at = 0;
            while (at + 16 <= controlLen) {
                long len = control.getLong(at);
                if (len < 16 || at + len > controlLen) {
                    break;
                }
                int level = control.getInt(at + 8);
                int type = control.getInt(at + 12);
                if (level == LibC.SOL_SOCKET) {
                    if (type == LibC.SCM_CREDENTIALS && len >= 16 + 12) {
                        pid = control.getInt(at + 16);
                        uid = control.getInt(at + 20);
                        gid = control.getInt(at + 24);
                    } else if (type == LibC.SCM_PIDFD && len >= 16 + 4) {
                        if (pidfd >= 0) {
                            LibC.close(pidfd);
                        }
                        pidfd = control.getInt(at + 16);
                    } else if (type == LibC.SCM_RIGHTS) {
                        descriptorsSent = true;
                        for (long f = at + 16; f + 4 <= at + len; f += 4) {
                            LibC.close(control.getInt(f));
                        }
                    }
                }
                at += (len + 7) & ~7L;
            }
            return n;
        }

        @Override
        public void close() {
            msg.close();
            data.close();
        }
    }
}
