package io.keywarden.linux;

/**
 * Process file descriptors for threads ({@code pidfd_open(2)} with {@code PIDFD_THREAD}, Linux 6.9
 * and later): a descriptor names one thread for as long as it is open, whatever its number is
 * given to later. Asking whether that thread still runs ({@code pidfd_send_signal} with signal 0)
 * costs one system call, where reading its start time from {@code /proc/TID/stat} costs the
 * kernel ~12 µs of text generation. While the thread it names runs, its number can belong to no
 * other thread: a request from thread N while the descriptor opened for N still finds its thread
 * alive comes from that very thread.
 */
public final class Pidfd {
    /** The generic syscall numbers, the same on x86-64 and arm64. */
    static final long SYS_PIDFD_SEND_SIGNAL = 424;
    static final long SYS_PIDFD_OPEN = 434;
    /** {@code PIDFD_THREAD} is {@code O_EXCL}. */
    static final long PIDFD_THREAD = LibC.O_EXCL;

    private static final boolean THREADS = probe();

    private Pidfd() {
    }

    /** True when this kernel opens descriptors for single threads (6.9 and later). */
    public static boolean threadsSupported() {
        return THREADS;
    }

    /** A descriptor for thread {@code tid} (close-on-exec by the kernel), or -1 with errno set. */
    public static int openThread(int tid) {
        if (tid <= 0) {
            return -1;
        }
        return (int) LibC.syscall(SYS_PIDFD_OPEN, tid, PIDFD_THREAD, 0, 0);
    }

    /** True while the thread {@code fd} names has not exited (signal 0: only looked up, nothing sent). */
    public static boolean alive(int fd) {
        return LibC.syscall(SYS_PIDFD_SEND_SIGNAL, fd, 0, 0, 0) == 0;
    }

    private static boolean probe() {
        try {
            int fd = openThread((int) ProcessHandle.current().pid());
            if (fd < 0) {
                return false;
            }
            boolean ok = alive(fd);
            LibC.close(fd);
            return ok;
        } catch (UnsatisfiedLinkError e) {
            return false;
        }
    }
}
