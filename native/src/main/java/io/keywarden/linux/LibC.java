package io.keywarden.linux;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Pointer;

/**
 * The few libc calls keywarden needs, bound with JNA direct mapping. Each returns what libc
 * returns; read errno with {@link Errno#last()} right after a call that returned -1.
 */
public final class LibC {
    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    public static final int O_TRUNC = 01000;
    public static final int O_NOFOLLOW = 0400000;
    public static final int O_CLOEXEC = 02000000;
    public static final int O_DIRECTORY = 0200000;
    public static final int O_PATH = 010000000;

    public static final long MS_NOSUID = 2;
    public static final long MS_NODEV = 4;
    public static final long MS_NOEXEC = 8;

    public static final int MNT_DETACH = 2;

    public static final int AT_FDCWD = -100;
    public static final int AT_EMPTY_PATH = 0x1000;
    public static final int AT_SYMLINK_NOFOLLOW = 0x100;
    public static final int STATX_BASIC_STATS = 0x7ff;

    public static final int PR_SET_DUMPABLE = 4;
    public static final int PR_GET_DUMPABLE = 3;
    public static final int RLIMIT_CORE = 4;

    public static final int PROT_READ = 1;
    public static final int PROT_WRITE = 2;
    public static final int MAP_PRIVATE = 2;
    public static final int MAP_ANONYMOUS = 0x20;
    public static final int MADV_DONTDUMP = 16;
    public static final int MADV_DONTFORK = 10;

    static {
        Native.register(NativeLibrary.getInstance("c"));
    }

    private LibC() {
    }

    public static native int open(String path, int flags, int mode);

    public static native int close(int fd);

    public static native long read(int fd, Pointer buf, long count);

    public static native long write(int fd, Pointer buf, long count);

    public static native int mount(String source, String target, String fstype, long flags, String data);

    public static native int umount2(String target, int flags);

    /** kill(2): sends {@code sig} to {@code pid} (keywarden exec signals its child on a rotation). */
    public static native int kill(int pid, int sig);

    public static native long readlink(String path, Pointer buf, long size);

    /** openat(2) with a NUL-terminated path in native memory (no Java string per call). */
    public static native int openat(int dirfd, Pointer path, int flags, int mode);

    /** readlinkat(2) with a NUL-terminated path in native memory. */
    public static native long readlinkat(int dirfd, Pointer path, Pointer buf, long size);

    /** getdents64(2) (glibc 2.30 and later): struct linux_dirent64 records into {@code buf}. */
    public static native long getdents64(int fd, Pointer buf, long count);

    /** Pins the calling thread when {@code pid} is 0. {@code mask} is a cpu_set_t of {@code size} bytes. */
    public static native int sched_setaffinity(int pid, long size, long[] mask);

    /** sched_setscheduler(2): {@code param} is a struct sched_param (its one int, the priority). */
    public static native int sched_setscheduler(int pid, int policy, int[] param);

    public static final int SCHED_BATCH = 3;

    public static native int chown(String path, int uid, int gid);

    public static native int fchown(int fd, int uid, int gid);

    public static native int mkdirat(int dirfd, String path, int mode);

    public static native int renameat(int olddirfd, String oldpath, int newdirfd, String newpath);

    public static final int AT_REMOVEDIR = 0x200;

    public static native int unlinkat(int dirfd, String path, int flags);

    /** openat(2) with a Java path (not for hot paths: a native string per call). */
    public static native int openat(int dirfd, String path, int flags, int mode);

    /** {@code buf} is a 256-byte struct statx (the same layout on every architecture). */
    public static native int statx(int dirfd, String path, int flags, int mask, Pointer buf);

    /** statx(2) with a NUL-terminated path in native memory (no Java string per call). */
    public static native int statx(int dirfd, Pointer path, int flags, int mask, Pointer buf);

    /**
     * syscall(2) for the calls glibc has no wrapper for everywhere (pidfd_open, pidfd_send_signal):
     * integer arguments only, unused ones 0. Returns -1 and sets errno on failure.
     */
    public static native long syscall(long number, long a1, long a2, long a3, long a4);

    /** syscall(2) with six integer arguments (io_uring_enter). */
    public static native long syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    public static final int EFD_CLOEXEC = 02000000;
    public static final int EFD_NONBLOCK = 04000;

    public static native int eventfd(int initval, int flags);

    public static final int MAP_SHARED = 1;
    public static final int MAP_POPULATE = 0x8000;

    public static native int prctl(int option, long arg2, long arg3, long arg4, long arg5);

    /** {@code rlim} is a struct rlimit: {soft, hard}. */
    public static native int setrlimit(int resource, long[] rlim);

    public static native int getrlimit(int resource, long[] rlim);

    public static native Pointer mmap(Pointer addr, long length, int prot, int flags, int fd, long offset);

    public static native int munmap(Pointer addr, long length);

    public static native int mlock(Pointer addr, long length);

    public static native int madvise(Pointer addr, long length, int advice);

    public static final int SOL_SOCKET = 1;
    /** struct ucred {pid, uid, gid} of a Unix socket's peer, as it was at connect(). */
    public static final int SO_PEERCRED = 17;

    /** {@code optval} of {@code optlen[0]} bytes; {@code optlen} is updated to the length written. */
    public static native int getsockopt(int fd, int level, int optname, int[] optval, int[] optlen);

    public static final int AF_NETLINK = 16;
    public static final int SOCK_DGRAM = 2;
    public static final int SOCK_CLOEXEC = 02000000;
    public static final int NETLINK_SOCK_DIAG = 4;

    public static native int socket(int domain, int type, int protocol);

    public static native long send(int fd, byte[] buf, long len, int flags);

    public static native long recv(int fd, byte[] buf, long len, int flags);

    /** send(2) from native memory. */
    public static native long send(int fd, Pointer buf, long len, int flags);

    public static final int SO_PASSCRED = 16;
    /** Linux 6.5: each received message carries a pidfd of its writer ({@code SCM_PIDFD}). */
    public static final int SO_PASSPIDFD = 76;
    public static final int SCM_CREDENTIALS = 2;
    public static final int SCM_PIDFD = 4;
    public static final int SOCK_NONBLOCK = 04000;
    public static final int MSG_DONTWAIT = 0x40;

    public static native int epoll_create1(int flags);

    /** {@code event}: a {@code struct epoll_event} in native memory ({@link Epoll} lays it out). */
    public static native int epoll_ctl(int epfd, int op, int fd, Pointer event);

    public static native int epoll_wait(int epfd, Pointer events, int maxevents, int timeout);

    public static final int AF_UNIX = 1;
    public static final int SOCK_STREAM = 1;
    public static final int SCM_RIGHTS = 1;
    public static final int SO_RCVTIMEO = 20;
    public static final int SO_SNDTIMEO = 21;
    public static final int MSG_NOSIGNAL = 0x4000;
    public static final int MSG_CTRUNC = 0x8;

    /** {@code addr}: a {@code struct sockaddr_un} ({@link UnixSockets} builds it). */
    public static native int bind(int fd, byte[] addr, int addrlen);

    public static native int connect(int fd, byte[] addr, int addrlen);

    public static native int listen(int fd, int backlog);

    public static native int shutdown(int fd, int how);

    public static native int accept4(int fd, Pointer addr, Pointer addrlen, int flags);

    public static native int setsockopt(int fd, int level, int optname, long[] optval, int optlen);

    /** {@code msg}: a {@code struct msghdr} in native memory. */
    public static native long sendmsg(int fd, Pointer msg, int flags);

    public static native long recvmsg(int fd, Pointer msg, int flags);

    public static native int getuid();

    public static native int geteuid();
}
