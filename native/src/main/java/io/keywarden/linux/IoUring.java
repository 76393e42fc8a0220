package io.keywarden.linux;

import com.sun.jna.Pointer;

/**
 * A minimal io_uring (io_uring_setup(2), io_uring_enter(2)) for one thread: 128-byte submission
 * entries (what {@code IORING_OP_URING_CMD} for FUSE needs), a completion queue twice as deep.
 * Not thread-safe: its owner prepares entries, submits them and reaps completions; another thread
 * that has something for the ring hands it to the owner (FUSE's ring wakes its owner through an
 * eventfd). The kernel reads submissions only inside io_uring_enter and, without SQPOLL, posts
 * completions that the owner sees after its io_uring_enter returns.
 *
 * <p>The rings are read and written through buffer views made once (a JNA call per field cost
 * more than the field), the indexes the kernel shares with acquire and release ordering as
 * liburing does ({@code smp_load_acquire}/{@code smp_store_release}).
 */
public final class IoUring implements AutoCloseable {
    static final long SYS_IO_URING_SETUP = 425;
    static final long SYS_IO_URING_ENTER = 426;

    static final int SETUP_CQSIZE = 1 << 3;
    static final int SETUP_SQE128 = 1 << 10;
    static final int FEAT_SINGLE_MMAP = 1;
    static final int ENTER_GETEVENTS = 1;
    static final long OFF_SQ_RING = 0;
    static final long OFF_CQ_RING = 0x8000000L;
    static final long OFF_SQES = 0x10000000L;

    public static final int OP_POLL_ADD = 6;
    public static final int OP_URING_CMD = 46;
    public static final int SQE_SIZE = 128;
    public static final int POLLIN = 1;

    /** What a completion said: the {@code user_data} of its submission and the result (-errno on failure). */
    public interface Completions {
        void completed(long userData, int result);
    }

    private static final java.lang.invoke.VarHandle INT = java.lang.invoke.MethodHandles.byteBufferViewVarHandle(
            int[].class, java.nio.ByteOrder.nativeOrder());
    private final int fd;
    private final Pointer sqRing;
    private final java.nio.ByteBuffer sq;
    private final java.nio.ByteBuffer cq;
    private final java.nio.ByteBuffer sqeView;
    private final long sqRingSize;
    private final Pointer cqRing;
    private final long cqRingSize;
    private final Pointer sqes;
    private final long sqesSize;
    private final int sqHead;
    private final int sqTail;
    private final int sqMask;
    private final int sqEntries;
    private final int sqArray;
    private final int cqHead;
    private final int cqTail;
    private final int cqMask;
    private final int cqes;
    private int tail;
    private boolean closed;

    private IoUring(int fd, Pointer params, Pointer sqRing, long sqRingSize, Pointer cqRing, long cqRingSize, Pointer sqes,
                    long sqesSize) {
        this.fd = fd;
        this.sqRing = sqRing;
        this.sqRingSize = sqRingSize;
        this.cqRing = cqRing;
        this.cqRingSize = cqRingSize;
        this.sqes = sqes;
        this.sqesSize = sqesSize;
        this.sqEntries = params.getInt(0);
        this.sqHead = params.getInt(40);
        this.sqTail = params.getInt(44);
        this.sqMask = sqRing.getInt(params.getInt(48));
        this.sqArray = params.getInt(64);
        this.cqHead = params.getInt(80);
        this.cqTail = params.getInt(84);
        this.cqMask = cqRing.getInt(params.getInt(88));
        this.cqes = params.getInt(100);
        this.tail = sqRing.getInt(sqTail);
        this.sq = sqRing.getByteBuffer(0, sqRingSize).order(java.nio.ByteOrder.nativeOrder());
        // One mapping for both rings (IORING_FEAT_SINGLE_MMAP): the view is the submission ring's.
        this.cq = cqRingSize > 0 ? cqRing.getByteBuffer(0, cqRingSize).order(java.nio.ByteOrder.nativeOrder()) : sq;
        this.sqeView = sqes.getByteBuffer(0, sqesSize).order(java.nio.ByteOrder.nativeOrder());
    }

    /** A ring of at least {@code entries} 128-byte submission entries; fails where io_uring is not allowed. */
    public static IoUring create(int entries) throws NativeException {
        com.sun.jna.Memory params = new com.sun.jna.Memory(120);
        params.clear();
        params.setInt(4, entries * 2);               // cq_entries, with IORING_SETUP_CQSIZE
        params.setInt(8, SETUP_SQE128 | SETUP_CQSIZE);
        int fd = (int) LibC.syscall(SYS_IO_URING_SETUP, entries, Pointer.nativeValue(params), 0, 0);
        if (fd < 0) {
            throw new NativeException("io_uring_setup(" + entries + ")", Errno.last());
        }
        try {
            int sqEntries = params.getInt(0);
            int cqEntries = params.getInt(4);
            long sqSize = params.getInt(64) + sqEntries * 4L;
            long cqSize = params.getInt(100) + cqEntries * 16L;
            boolean single = (params.getInt(20) & FEAT_SINGLE_MMAP) != 0;
            if (single) {
                sqSize = Math.max(sqSize, cqSize);
                cqSize = sqSize;
            }
            Pointer sq = map(fd, sqSize, OFF_SQ_RING);
            Pointer cq = single ? sq : map(fd, cqSize, OFF_CQ_RING);
            long sqesSize = (long) sqEntries * SQE_SIZE;
            Pointer s = map(fd, sqesSize, OFF_SQES);
            return new IoUring(fd, params, sq, sqSize, cq, single ? 0 : cqSize, s, sqesSize);
        } catch (NativeException e) {
            LibC.close(fd);
            throw e;
        }
    }

    private static Pointer map(int fd, long size, long offset) throws NativeException {
        Pointer p = LibC.mmap(null, size, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_POPULATE, fd, offset);
        if (p == null || Pointer.nativeValue(p) == -1L) {
            throw new NativeException("mmap(io_uring, " + size + " bytes at " + offset + ")", Errno.last());
        }
        return p;
    }

    /**
     * The next free submission entry, zeroed: its offset in {@link #sqes()}, or -1 when all are
     * waiting to be submitted.
     */
    public int next() {
        int head = (int) INT.getAcquire(sq, sqHead);
        if (tail - head >= sqEntries) {
            return -1;
        }
        int index = tail & sqMask;
        int at = index * SQE_SIZE;
        Buffers.zero(sqeView, at, SQE_SIZE);
        sq.putInt(sqArray + index * 4, index);
        tail++;
        return at;
    }

    /** The submission entries (native byte order), written at the offsets {@link #next} gives. */
    public java.nio.ByteBuffer sqes() {
        return sqeView;
    }

    /**
     * Submits what was prepared and, with {@code wait}, blocks until at least one completion is
     * there. Returns normally on EINTR (nothing lost: unsubmitted entries go with the next call).
     */
    public void submit(boolean wait) throws NativeException {
        // Released: the kernel that reads this tail sees every entry written before it.
        INT.setRelease(sq, sqTail, tail);
        int pending = tail - (int) INT.getAcquire(sq, sqHead);
        long r = LibC.syscall(SYS_IO_URING_ENTER, fd, pending, wait ? 1 : 0, wait ? ENTER_GETEVENTS : 0, 0, 0);
        if (r < 0) {
            int errno = Errno.last();
            if (errno != Errno.EINTR && errno != Errno.EAGAIN && errno != Errno.EBUSY) {
                throw new NativeException("io_uring_enter", errno);
            }
        }
    }

    /** Hands every completion there is to {@code to}, in order; returns how many. */
    public int reap(Completions to) {
        int head = (int) INT.getAcquire(cq, cqHead);
        int end = (int) INT.getAcquire(cq, cqTail);
        int n = 0;
        while (head != end) {
            int at = cqes + (head & cqMask) * 16;
            long userData = cq.getLong(at);
            int res = cq.getInt(at + 8);
            head++;
            n++;
            // Released after the entry was read: the kernel may reuse its slot from then on.
            INT.setRelease(cq, cqHead, head);
            to.completed(userData, res);
        }
        return n;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        LibC.munmap(sqes, sqesSize);
        if (cqRingSize > 0) {
            LibC.munmap(cqRing, cqRingSize);
        }
        LibC.munmap(sqRing, sqRingSize);
        LibC.close(fd);
    }
}
