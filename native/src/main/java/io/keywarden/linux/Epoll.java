package io.keywarden.linux;

import com.sun.jna.Memory;
import com.sun.jna.Platform;
import com.sun.jna.Pointer;

/**
 * An epoll instance (level-triggered) for one thread's event loop: descriptors registered with a
 * 64-bit tag, and a native array of ready events read in place (nothing allocated per wait).
 */
public final class Epoll implements AutoCloseable {
    public static final int IN = 0x001;
    public static final int OUT = 0x004;
    public static final int ERR = 0x008;
    public static final int HUP = 0x010;
    public static final int RDHUP = 0x2000;
    private static final int CTL_ADD = 1;
    private static final int CTL_DEL = 2;
    private static final int CTL_MOD = 3;
    /** {@code struct epoll_event} is packed on x86-64 (12 bytes), naturally aligned elsewhere (16). */
    private static final int SIZE = Platform.isIntel() ? 12 : 16;
    private static final int DATA = Platform.isIntel() ? 4 : 8;

    private final int fd;
    private final Memory events;
    private final Memory one = new Memory(16);
    private final int capacity;

    public Epoll(int capacity) throws NativeException {
        this.fd = LibC.epoll_create1(LibC.O_CLOEXEC);
        if (fd < 0) {
            throw new NativeException("epoll_create1", Errno.last());
        }
        this.capacity = capacity;
        this.events = new Memory((long) SIZE * capacity);
    }

    /** The epoll descriptor itself (to nest it in another event loop's epoll: readable while an event is ready). */
    public int fd() {
        return fd;
    }

    public void add(int target, int mask, long tag) throws NativeException {
        ctl(CTL_ADD, target, mask, tag);
    }

    public void modify(int target, int mask, long tag) throws NativeException {
        ctl(CTL_MOD, target, mask, tag);
    }

    /** Forgets {@code target} (closing a descriptor does that too, once no other copy of it is open). */
    public void remove(int target) {
        LibC.epoll_ctl(fd, CTL_DEL, target, one);
    }

    private void ctl(int op, int target, int mask, long tag) throws NativeException {
        one.setInt(0, mask);
        one.setLong(DATA, tag);
        if (LibC.epoll_ctl(fd, op, target, one) != 0) {
            throw new NativeException("epoll_ctl(" + target + ")", Errno.last());
        }
    }

    /** Waits up to {@code timeoutMillis} (-1: forever); the number of ready events (0 on EINTR or timeout). */
    public int await(int timeoutMillis) throws NativeException {
        int n = LibC.epoll_wait(fd, events, capacity, timeoutMillis);
        if (n < 0) {
            int e = Errno.last();
            if (e == Errno.EINTR) {
                return 0;
            }
            throw new NativeException("epoll_wait", e);
        }
        return n;
    }

    /** The ready mask of event {@code i} of the last {@link #await}. */
    public int mask(int i) {
        return events.getInt((long) i * SIZE);
    }

    /** The tag of event {@code i} of the last {@link #await}. */
    public long tag(int i) {
        return events.getLong((long) i * SIZE + DATA);
    }

    @Override
    public void close() {
        LibC.close(fd);
        events.close();
        one.close();
    }
}
