package io.keywarden.fuse;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import io.keywarden.linux.Buffers;
import io.keywarden.linux.Errno;
import io.keywarden.linux.IoUring;
import io.keywarden.linux.LibC;
import io.keywarden.linux.NativeException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * FUSE over io_uring (Linux 6.14 and later, when {@code /sys/module/fuse/parameters/enable_uring}
 * is set): one ring per possible CPU, each with a few entries the kernel fills with requests of
 * readers running on that CPU; an answer and the fetch of the next request are one submission
 * (FUSE_IO_URING_CMD_COMMIT_AND_FETCH) instead of a write(2) and a read(2) on /dev/fuse.
 *
 * <p>Layouts (include/uapi/linux/fuse.h, ABI 7.42): an entry's header buffer is {@code struct
 * fuse_uring_req_header} (the in/out header at 0, the operation's own first argument at 128, then
 * {@code fuse_uring_ent_in_out}: flags, commit id at 264, payload size at 272), its payload buffer
 * the request's other arguments and, on commit, the reply after its out header. The command in
 * the SQE's 80-byte area is {@code struct fuse_uring_cmd_req} (flags, commit id, queue id).
 *
 * <p>Threads: a ring is driven by its own thread, which submits everything.
 * An answer given on that thread is committed at once; one given later by another thread (an
 * issuance that completed) is handed over through a queue and an eventfd the ring polls.
 * Notifications, FORGET and INTERRUPT stay on /dev/fuse (the kernel sends them there).
 */
final class FuseUring implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(FuseUring.class.getName());
    /**
     * Each queue's thread bound to its CPU (as libfuse does); {@code -Dkeywarden.fuse.ringAffinity=false}
     * leaves them to the scheduler, to measure both ways.
     */
    static final boolean RING_AFFINITY = !"false".equals(System.getProperty("keywarden.fuse.ringAffinity"));
    /**
     * Each queue's thread under {@code SCHED_BATCH}: woken by a reader's request, it does not preempt
     * that reader, which is about to sleep until the answer anyway; it runs once the reader sleeps, on
     * the same CPU. Preempted instead, the reader waited runnable beside the ring's thread, and the
     * other CPU, idle, pulled it away (a wake across CPUs for the answer). Measured (DeliveryBench, one
     * reader, io_uring): the no-op floor 7.0-7.6 -> 5.0-5.1 µs, KeyFS 7.7-8.9 -> 6.5-7.7, the daemon
     * 8.7-10.4 -> 7.9-8.2; eight readers unchanged; with a CPU hog on each CPU no worse.
     * {@code -Dkeywarden.fuse.ringBatch=false} keeps them SCHED_OTHER, to measure both ways.
     */
    static final boolean RING_BATCH = !"false".equals(System.getProperty("keywarden.fuse.ringBatch"));

    /** FUSE_OVER_IO_URING (bit 41 of the INIT flags: bit 9 of flags2). */
    static final int FUSE_OVER_IO_URING_FLAGS2 = 1 << 9;
    /** The first protocol minor with the ring (7.42). */
    static final int MINOR = 42;

    static final int HEADER_SIZE = 288;
    static final int OP_IN = 128;
    static final int OP_IN_SIZE = 128;
    static final int COMMIT_ID = 264;
    static final int PAYLOAD_SZ = 272;
    static final int CMD_REGISTER = 1;
    static final int CMD_COMMIT_AND_FETCH = 2;
    /** user_data of the eventfd poll (entries use their index). */
    static final long WAKE = Long.MAX_VALUE;

    private final FuseSession session;
    private final int devFd;
    private final Queue[] queues;
    private final AtomicLong served = new AtomicLong();
    private final AtomicInteger registered = new AtomicInteger();
    /** Counted down by each ring once the kernel took or refused its entries. */
    private final java.util.concurrent.CountDownLatch settled;
    private volatile boolean closing;

    private FuseUring(FuseSession session, int devFd, Queue[] queues) {
        this.session = session;
        this.devFd = devFd;
        this.queues = queues;
        this.settled = new java.util.concurrent.CountDownLatch(queues.length);
    }

    /**
     * Sets up a ring per possible CPU, before INIT is answered: when this fails (io_uring refused
     * by a sysctl, seccomp or a memory limit) the kernel is not told we speak it, and the session
     * stays on /dev/fuse. Told and unable to register, the kernel would hold every request.
     */
    static FuseUring prepare(FuseSession session, int devFd, int depth, int payloadSize) throws NativeException {
        int cpus = possibleCpus();
        Queue[] queues = new Queue[cpus];
        FuseUring u = new FuseUring(session, devFd, queues);
        try {
            for (int q = 0; q < cpus; q++) {
                queues[q] = u.new Queue(q, depth, payloadSize);
            }
        } catch (NativeException | RuntimeException e) {
            for (Queue q : queues) {
                if (q != null) {
                    q.release();
                }
            }
            throw e;
        }
        return u;
    }

    /** The kernel's queue count: one per possible CPU, numbered by CPU. */
    static int possibleCpus() {
        try {
            String s = Files.readString(Path.of("/sys/devices/system/cpu/possible")).trim();
            int max = 0;
            for (String part : s.split(",")) {
                String[] r = part.split("-");
                max = Math.max(max, Integer.parseInt(r[r.length - 1].trim()));
            }
            return max + 1;
        } catch (IOException | RuntimeException e) {
            return Runtime.getRuntime().availableProcessors();
        }
    }

    /**
     * Starts the ring threads (after INIT was answered: the kernel registers entries only then) and
     * returns once each ring's entries were taken or refused (at most 5 s), so that what
     * {@link #registered} says holds from the first request on.
     */
    void start(String name) {
        for (Queue q : queues) {
            Thread t = new Thread(q, "fuse-ring-" + name + "-" + q.qid);
            t.setDaemon(true);
            q.thread = t;
            t.start();
        }
        try {
            if (!settled.await(5, java.util.concurrent.TimeUnit.SECONDS)) {
                LOG.log(System.Logger.Level.WARNING, "FUSE io_uring: not every ring registered within 5 s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Requests served through the rings so far. */
    long served() {
        return served.get();
    }

    /** Rings whose entries the kernel took. */
    int registered() {
        return registered.get();
    }

    int queues() {
        return queues.length;
    }

    boolean threadsAlive() {
        for (Queue q : queues) {
            if (q.thread != null && q.thread.isAlive()) {
                return true;
            }
        }
        return false;
    }

    /** Stops the ring threads; their rings' closing hands the entries back to the kernel. */
    @Override
    public void close() {
        closing = true;
        for (Queue q : queues) {
            q.wake();
        }
        for (Queue q : queues) {
            if (q.thread != null) {
                try {
                    q.thread.join(1000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            } else {
                q.release();
            }
        }
    }

    private final class Queue implements Runnable, IoUring.Completions {
        final int qid;
        final IoUring ring;
        final int eventfd;
        final Entry[] entries;
        final ConcurrentLinkedQueue<Entry> commits = new ConcurrentLinkedQueue<>();
        final Memory one = new Memory(8);
        final Memory drained = new Memory(8);
        final ByteBuffer request;
        volatile Thread thread;
        /** The reply buffer of {@link #thread}, once it has replied (only that thread uses it). */
        ByteBuffer replyBuffer;
        int live;
        boolean done;
        private boolean released;

        Queue(int qid, int depth, int payloadSize) throws NativeException {
            this.qid = qid;
            this.eventfd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
            if (eventfd < 0) {
                throw new NativeException("eventfd", Errno.last());
            }
            try {
                this.ring = IoUring.create(depth + 1);
            } catch (NativeException e) {
                LibC.close(eventfd);
                throw e;
            }
            one.setLong(0, 1);
            entries = new Entry[depth];
            for (int i = 0; i < depth; i++) {
                entries[i] = new Entry(this, i, payloadSize);
            }
            // A whole request laid out as read(2) from /dev/fuse returns it, for the one decoder.
            request = FuseDevice.direct(FuseRequest.HEADER + OP_IN_SIZE + payloadSize);
        }

        @Override
        public void run() {
            boolean counted = false;
            FuseSession.markWorker();
            if (RING_BATCH && LibC.sched_setscheduler(0, LibC.SCHED_BATCH, new int[1]) != 0) {
                LOG.log(System.Logger.Level.DEBUG, "FUSE io_uring queue " + qid + " stays SCHED_OTHER: "
                        + Errno.name(Errno.last()));
            }
            if (RING_AFFINITY) {
                bindToItsCpu();
            }
            try {
                for (Entry e : entries) {
                    register(e);
                }
                live = entries.length;
                poll();
                // A refused REGISTER completes within the submission; one the kernel keeps, later.
                ring.submit(false);
                ring.reap(this);
                if (live > 0) {
                    // Counted with any entry taken: the kernel may route requests here (a handover
                    // is then refused, the safe side).
                    registered.incrementAndGet();
                }
                settled.countDown();
                counted = true;
                while (!done && !closing) {
                    ring.submit(true);
                    ring.reap(this);
                }
            } catch (NativeException | RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "FUSE io_uring queue " + qid + " stops: " + e.getMessage());
            } finally {
                if (!counted) {
                    settled.countDown();
                }
                release();
                if (!closing && registered.get() == queues.length) {
                    // The kernel routes this CPU's requests to this ring alone: they would wait forever.
                    session.ringLost("FUSE io_uring queue " + qid + " stopped serving");
                }
            }
        }

        /**
         * On the CPU whose requests this queue serves, as libfuse binds its queue threads: the kernel
         * queues a reader's request on the ring of the reader's CPU, so the answer wakes no other
         * CPU. Measured (DeliveryBench, io_uring, interleaved): unbound, the ring threads drifted
         * onto each other's CPU and an open's median flipped between ~25 and ~60-100 µs from run
         * to run with eight readers, and a lone reader on one CPU waited 63 µs an open (8 bound).
         * Where the daemon may not run there (a cpuset), it stays unbound.
         */
        private void bindToItsCpu() {
            long[] mask = new long[qid / 64 + 1];
            mask[qid / 64] = 1L << (qid % 64);
            if (LibC.sched_setaffinity(0, mask.length * 8L, mask) != 0) {
                LOG.log(System.Logger.Level.DEBUG, "FUSE io_uring queue " + qid + " stays unbound: "
                        + Errno.name(Errno.last()));
            }
        }

        @Override
        public void completed(long userData, int res) {
            if (userData == WAKE) {
                LibC.read(eventfd, drained, 8);
                if (closing) {
                    done = true;
                    return;
                }
                for (Entry e; (e = commits.poll()) != null; ) {
                    commit(e);
                }
                poll();
                return;
            }
            Entry e = entries[(int) userData];
            if (res == 0) {
                serve(e);
            } else if (res == -Errno.EINTR || res == -Errno.EAGAIN) {
                if (e.lastCommand == CMD_REGISTER) {
                    register(e);
                } else {
                    commit(e);
                }
            } else {
                e.dead = true;
                if (--live == 0) {
                    done = true;
                }
                if (res != -Errno.ENOTCONN && res != -Errno.ECANCELED && !closing) {
                        LOG.log(System.Logger.Level.WARNING, "FUSE io_uring queue " + qid + " entry " + e.index + ": "
                            + (e.lastCommand == CMD_REGISTER ? "REGISTER" : "COMMIT_AND_FETCH") + " failed with "
                            + Errno.name(-res) + (e.lastCommand == CMD_REGISTER ? " (requests go through /dev/fuse)" : ""));
                }
            }
        }

        private void serve(Entry e) {
            ByteBuffer h = e.header;
            int len = h.getInt(0);
            int payload = h.getInt(PAYLOAD_SZ);
            e.commitId = h.getLong(COMMIT_ID);
            int op = len - FuseRequest.HEADER - payload;
            if (len < FuseRequest.HEADER || payload < 0 || payload > e.payload.capacity() || op < 0 || op > OP_IN_SIZE) {
                LOG.log(System.Logger.Level.WARNING, "FUSE io_uring queue " + qid + ": a request of " + len
                        + " bytes with a payload of " + payload + " does not add up; answered EIO");
                new FuseReply(e, h.getLong(8), h.getInt(4)).error(Errno.EIO);
                return;
            }
            request.clear();
            Buffers.copy(h, 0, request, 0, FuseRequest.HEADER);
            Buffers.copy(h, OP_IN, request, FuseRequest.HEADER, op);
            Buffers.copy(e.payload, 0, request, FuseRequest.HEADER + op, payload);
            served.incrementAndGet();
            if (!session.dispatch(request, len, e)) {
                // Answered all the same: an entry never committed would be lost to the ring for good.
                new FuseReply(e, h.getLong(8), h.getInt(4)).error(Errno.EIO);
            }
        }

        /** From the ring's thread: at once; from another: queued for it, and it woken. */
        void answered(Entry e) {
            if (Thread.currentThread() == thread) {
                commit(e);
            } else if (!closing) {
                commits.add(e);
                wake();
            }
        }

        void wake() {
            LibC.write(eventfd, one, 8);
        }

        private void register(Entry e) {
            int at = command(e, CMD_REGISTER, 0);
            ByteBuffer sqe = ring.sqes();
            sqe.putLong(at + 16, Pointer.nativeValue(e.iov));
            sqe.putInt(at + 24, 2);
        }

        private void commit(Entry e) {
            if (!e.dead) {
                command(e, CMD_COMMIT_AND_FETCH, e.commitId);
            }
        }

        /** Prepares an URING_CMD for {@code e}; returns its offset in the ring's submission entries. */
        private int command(Entry e, int cmd, long commitId) {
            int at = ring.next();
            if (at < 0) {
                // One submission per entry and one poll at most: the ring has room for all of them.
                throw new IllegalStateException("FUSE io_uring queue " + qid + " has no free submission entry");
            }
            ByteBuffer sqe = ring.sqes();
            sqe.put(at, (byte) IoUring.OP_URING_CMD);
            sqe.putInt(at + 4, devFd);
            sqe.putInt(at + 8, cmd);
            sqe.putLong(at + 32, e.index);
            sqe.putLong(at + 48, 0);          // fuse_uring_cmd_req.flags
            sqe.putLong(at + 56, commitId);   // .commit_id
            sqe.putShort(at + 64, (short) qid);
            e.lastCommand = cmd;
            return at;
        }

        private void poll() {
            int at = ring.next();
            if (at < 0) {
                throw new IllegalStateException("FUSE io_uring queue " + qid + " has no free submission entry");
            }
            ByteBuffer sqe = ring.sqes();
            sqe.put(at, (byte) IoUring.OP_POLL_ADD);
            sqe.putInt(at + 4, eventfd);
            sqe.putInt(at + 28, IoUring.POLLIN);
            sqe.putLong(at + 32, WAKE);
        }

        synchronized void release() {
            if (!released) {
                released = true;
                ring.close();
                LibC.close(eventfd);
            }
        }
    }

    /** One registered slot: the kernel writes a request into its buffers; the answer goes back the same way. */
    private final class Entry implements ReplySink {
        final Queue queue;
        final int index;
        final ByteBuffer header;
        final ByteBuffer payload;
        final Memory iov = new Memory(32);
        // Held by the entry for the ring's life (JNA frees a Memory once it is unreachable).
        private final Memory headerMemory;
        private final Memory payloadMemory;
        long commitId;
        int lastCommand;
        boolean dead;

        Entry(Queue queue, int index, int payloadSize) {
            this.queue = queue;
            this.index = index;
            // malloc'd, not zeroed: pages the kernel never writes are never resident.
            headerMemory = new Memory(HEADER_SIZE);
            headerMemory.clear();
            payloadMemory = new Memory(payloadSize);
            header = headerMemory.getByteBuffer(0, HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
            payload = payloadMemory.getByteBuffer(0, payloadSize).order(ByteOrder.LITTLE_ENDIAN);
            iov.setPointer(0, headerMemory);
            iov.setLong(8, HEADER_SIZE);
            iov.setPointer(16, payloadMemory);
            iov.setLong(24, payloadSize);
        }

        @Override
        public ByteBuffer buffer() {
            Queue q = queue;
            if (Thread.currentThread() != q.thread) {
                return session.device().replyBuffer();
            }
            // The ring's thread's own reply buffer (its thread-local one), kept at hand: a
            // ThreadLocal lookup is a VM call per reply for the daemon's C1 compiler.
            ByteBuffer b = q.replyBuffer;
            if (b == null) {
                b = session.device().replyBuffer();
                q.replyBuffer = b;
            }
            b.clear();
            return b;
        }

        @Override
        public void send(FuseReply reply, ByteBuffer b, int length) {
            session.replied(reply);
            int out = length - FuseReply.OUT_HEADER;
            Buffers.copy(b, 0, header, 0, FuseReply.OUT_HEADER);
            Buffers.copy(b, FuseReply.OUT_HEADER, payload, 0, out);
            header.putInt(PAYLOAD_SZ, out);
            queue.answered(this);
        }
    }
}
