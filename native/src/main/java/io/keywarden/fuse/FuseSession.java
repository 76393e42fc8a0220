package io.keywarden.fuse;

import com.sun.jna.Native;
import com.sun.jna.Pointer;
import io.keywarden.linux.Errno;
import io.keywarden.linux.LibC;
import io.keywarden.linux.Mounts;
import io.keywarden.linux.NativeException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A mounted FUSE file system served from Java over /dev/fuse: N worker threads block in read(),
 * each decodes one request and hands it to the {@link FuseOperations}; replies may come later
 * from any thread. Nothing a request does can kill a worker. Where the kernel offers FUSE over
 * io_uring, the requests of readers come through {@link FuseUring}'s rings instead (the workers
 * still take FORGET and INTERRUPT); a stale mount, the connection's number and its abort are
 * {@link FuseConnection}'s.
 *
 * <p>Over 300 lines on purpose: mounting, the workers, dispatch, INIT and teardown share the
 * device and the pending-reply table; the wire structures themselves are in {@link FuseStructs}.
 *
 * <p>Over 400 lines: the FUSE connection's whole life (mount, INIT and what it agrees on, workers,
 * notify, pause for a handover, adopt, unmount) around one descriptor.
 */
public final class FuseSession implements AutoCloseable {
    /** Replies go to /dev/fuse; the session forgets the request as answered first. */
    private final ReplySink sink = new ReplySink() {
        @Override
        public ByteBuffer buffer() {
            return device.replyBuffer();
        }

        @Override
        public void send(FuseReply reply, ByteBuffer b, int length) throws NativeException {
            replied(reply);
            device.write(b, length);
        }
    };

    private static final System.Logger LOG = System.getLogger(FuseSession.class.getName());

    /** The protocol minor version we speak; the kernel adapts to older minors. */
    static final int MINOR = 31;
    static final int FUSE_ASYNC_READ = 1;
    static final int FUSE_PARALLEL_DIROPS = 1 << 18;

    public static final int FOPEN_DIRECT_IO = 1;
    public static final int FOPEN_KEEP_CACHE = 1 << 1;
    public static final int FOPEN_NONSEEKABLE = 1 << 2;
    public static final int FOPEN_NOFLUSH = 1 << 5;

    static final int FUSE_INIT_EXT = 1 << 30;
    /** In flags2 (bit 42 of the 64-bit flags): the kernel honours init_out.request_timeout. */
    static final int FUSE_REQUEST_TIMEOUT_FLAGS2 = 1 << 10;

    /**
     * How to mount. {@code requestTimeoutSeconds} (0: none) asks the kernel (6.14 and later) to
     * abort the connection when a request stays unanswered that long, so a stopped or stuck daemon
     * turns into errors for readers rather than hangs; {@code onLost} is told when the connection
     * goes away while the session was not closing (an outside umount, an abort).
     */
    public record Options(String fsName, int workers, boolean allowOther, int[] workerCpus, int requestTimeoutSeconds,
                          java.util.function.Consumer<String> onLost, boolean ioUring) {
        public static Options defaults(String fsName) {
            return new Options(fsName, Math.max(4, Runtime.getRuntime().availableProcessors() * 2), true, new int[0], 0,
                    why -> { }, true);
        }

        /** Pins the workers to these CPUs (fewer hand-offs between cores on small VMs). */
        public Options pinnedTo(int... cpus) {
            return new Options(fsName, workers, allowOther, cpus.clone(), requestTimeoutSeconds, onLost, ioUring);
        }

        public Options withWorkers(int n) {
            if (n < 1) {
                throw new IllegalArgumentException("FUSE workers must be at least 1, not " + n);
            }
            return new Options(fsName, n, allowOther, workerCpus, requestTimeoutSeconds, onLost, ioUring);
        }

        public Options withRequestTimeout(int seconds) {
            if (seconds < 0 || seconds > 65535) {
                throw new IllegalArgumentException("FUSE request timeout must be 0..65535 s, not " + seconds);
            }
            return new Options(fsName, workers, allowOther, workerCpus, seconds, onLost, ioUring);
        }

        public Options onLost(java.util.function.Consumer<String> listener) {
            return new Options(fsName, workers, allowOther, workerCpus, requestTimeoutSeconds, listener, ioUring);
        }

        /**
         * {@code true} (the default): serve over io_uring when the kernel offers it (FUSE 7.42,
         * {@code enable_uring} set) and rings can be set up here, else /dev/fuse reads;
         * {@code false}: /dev/fuse reads always.
         */
        public Options withIoUring(boolean allowed) {
            return new Options(fsName, workers, allowOther, workerCpus, requestTimeoutSeconds, onLost, allowed);
        }
    }

    /** Entries per ring: one request each waiting in the kernel for this daemon at a time. */
    static final int URING_DEPTH = 4;

    private final Path mountPoint;
    private final FuseOperations ops;
    private final FuseDevice device;
    private final List<Thread> workers = new ArrayList<>();
    private final Map<Long, FuseReply> pending = new ConcurrentHashMap<>();
    private final CountDownLatch initialised = new CountDownLatch(1);
    private volatile long connectionId = -1;
    private volatile boolean closing;
    /** Set by {@link #pause}: workers finish the request they hold and stop reading. */
    private volatile boolean paused;
    private volatile int kernelMinor;

    private final Options options;
    /** Set when INIT agreed on io_uring; null while requests come through /dev/fuse reads only. */
    private volatile FuseUring uring;
    private final java.util.concurrent.atomic.AtomicBoolean lost = new java.util.concurrent.atomic.AtomicBoolean();
    private volatile boolean requestTimeoutAccepted;

    private FuseSession(Path mountPoint, FuseOperations ops, FuseDevice device, Options options) {
        this.mountPoint = mountPoint;
        this.ops = ops;
        this.device = device;
        this.options = options;
    }

    /**
     * Mounts at {@code mountPoint} (created if missing; a stale FUSE mount there is detached first)
     * with {@code nosuid,nodev,noexec} and returns once the kernel's INIT was answered.
     */
    public static FuseSession mount(Path mountPoint, FuseOperations ops, Options options) throws IOException {
        Path mp = mountPoint.toAbsolutePath().normalize();
        FuseConnection.detachStale(mp);
        Files.createDirectories(mp);
        FuseDevice dev = FuseDevice.open();
        FuseSession s = null;
        try {
            String data = "fd=" + dev.fd() + ",rootmode=40000,user_id=0,group_id=0"
                    + (options.allowOther() ? ",allow_other" : "");
            Mounts.mount(options.fsName(), mp, "fuse." + options.fsName(),
                    LibC.MS_NOSUID | LibC.MS_NODEV | LibC.MS_NOEXEC, data);
            s = new FuseSession(mp, ops, dev, options);
            s.start(options.workers(), options.workerCpus());
            if (!s.initialised.await(10, TimeUnit.SECONDS)) {
                throw new IOException("the kernel did not send FUSE INIT within 10 s");
            }
            // stat(2) on the mount goes through our workers: only now can it be answered.
            s.connectionId = FuseConnection.idOf(mp);
            return s;
        } catch (IOException | RuntimeException e) {
            if (s != null) {
                s.close();
            } else {
                dev.close();
            }
            throw e;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            s.close();
            throw new IOException("interrupted while mounting " + mp);
        }
    }

    /**
     * What a successor needs to serve this connection without mounting again: the open device
     * descriptor and what INIT negotiated with the kernel (which is never sent twice).
     */
    public record Handoff(int fd, int kernelMinor, boolean requestTimeout, long connectionId) {
    }

    /**
     * Serves the connection a predecessor handed over ({@link #handoff}): no mount, no INIT; the
     * mount must still be at {@code mountPoint}. Requests that queued in the kernel meanwhile are
     * read from the first moment the workers run.
     */
    public static FuseSession adopt(Path mountPoint, FuseOperations ops, Handoff h, Options options) throws IOException {
        Path mp = mountPoint.toAbsolutePath().normalize();
        var m = Mounts.at(mp);
        if (m.isEmpty() || !m.get().fsType().equals("fuse." + options.fsName())) {
            throw new IOException("no fuse." + options.fsName() + " mount at " + mp + " to take over ("
                    + m.map(x -> "found " + x.fsType()).orElse("nothing mounted there") + ")");
        }
        FuseSession s = new FuseSession(mp, ops, FuseDevice.adopt(h.fd()), options);
        s.kernelMinor = h.kernelMinor();
        s.requestTimeoutAccepted = h.requestTimeout();
        s.connectionId = h.connectionId();
        s.initialised.countDown();
        s.start(options.workers(), options.workerCpus());
        return s;
    }

    /**
     * Stops serving without unmounting, for a handover: every worker finishes the request it holds
     * and stops reading (the ones blocked in read() are woken by a LOOKUP of a name that never
     * exists, sent from a thread of our own), then replies still being worked out (an issuance in
     * flight) are awaited. Requests that arrive meanwhile wait in the kernel's queue for whoever
     * reads next. Returns how many requests were still unanswered when {@code max} ran out.
     */
    public int pause(java.time.Duration max) throws InterruptedException {
        if (servesOverIoUring()) {
            throw new IllegalStateException(IO_URING_NO_HANDOVER);
        }
        paused = true;
        long end = System.nanoTime() + max.toNanos();
        Thread waker = new Thread(() -> {
            int n = 0;
            while (paused && !closing && workers.stream().anyMatch(Thread::isAlive)) {
                // Answered ENOENT by whichever worker reads it, which then sees `paused` and stops.
                Files.exists(mountPoint.resolve(".keywarden-wake-" + n++));
            }
        }, "fuse-wake-" + mountPoint.getFileName());
        waker.setDaemon(true);
        waker.start();
        for (Thread t : workers) {
            t.join(Math.max(1, (end - System.nanoTime()) / 1_000_000));
        }
        while (!pending.isEmpty() && System.nanoTime() < end) {
            Thread.sleep(5);
        }
        return pending.size() + (int) workers.stream().filter(Thread::isAlive).count();
    }

    /** Why a session on io_uring cannot be paused for a successor. */
    public static final String IO_URING_NO_HANDOVER = "the mount is served over FUSE io_uring, whose registered"
            + " entries the kernel cannot give to another process (it has no command to take them back): restart"
            + " the daemon instead of taking over (or set tuning.fuseIoUring: false to keep takeovers)";

    /** True when INIT agreed on io_uring and requests go through the rings (see {@link FuseUring}). */
    public boolean servesOverIoUring() {
        FuseUring u = uring;
        return u != null && u.registered() == u.queues();
    }

    /** Requests answered through the rings so far (0 without io_uring). */
    public long ioUringRequests() {
        FuseUring u = uring;
        return u == null ? 0 : u.served();
    }

    /** Serves again after a {@link #pause} that was not followed by a handover. */
    public synchronized void resume() {
        if (!paused || closing) {
            return;
        }
        for (Thread t : workers) {
            if (t.isAlive()) {
                throw new IllegalStateException("a FUSE worker of " + mountPoint + " has not stopped yet");
            }
        }
        paused = false;
        workers.clear();
        start(options.workers(), options.workerCpus());
    }

    /** The connection as it stands, for a successor; call after {@link #pause}. */
    public Handoff handoff() {
        return new Handoff(device.fd(), kernelMinor, requestTimeoutAccepted, connectionId);
    }

    /**
     * After a handover: forgets the connection without unmounting or aborting it; closing our
     * descriptor leaves the successor's (the same open file) serving the mount.
     */
    public void release() {
        if (closing) {
            return;
        }
        closing = true;
        notifier.shutdownNow();
        device.close();
    }

    public Path mountPoint() {
        return mountPoint;
    }

    private final java.util.concurrent.ExecutorService notifier = java.util.concurrent.Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "fuse-notify");
        t.setDaemon(true);
        return t;
    });

    /**
     * Asks the kernel to drop its cached attributes and pages of {@code ino}
     * (FUSE_NOTIFY_INVAL_INODE), from a thread of its own: the kernel may wait for page locks whose
     * READ a worker has yet to answer, so a worker must never send it.
     */
    public java.util.concurrent.CompletableFuture<Void> invalidateInode(long ino) {
        java.util.concurrent.CompletableFuture<Void> done = new java.util.concurrent.CompletableFuture<>();
        if (closing || paused) {
            done.complete(null);
            return done;
        }
        notifier.execute(() -> {
            int length = FuseStructs.OutHeader.SIZE + FuseStructs.NotifyInvalInode.SIZE;
            ByteBuffer b = FuseDevice.direct(length);
            // A notification: unique 0, the code where a reply has its error.
            new FuseStructs.OutHeader(length, FuseStructs.NotifyInvalInode.CODE, 0).encode(b, 0);
            new FuseStructs.NotifyInvalInode(ino, 0, 0).encode(b, FuseStructs.OutHeader.SIZE);
            try {
                device.write(b, length);
            } catch (NativeException e) {
                // ENOENT: the kernel has no such inode cached, nothing to drop.
                if (e.errno() != Errno.ENOENT) {
                    LOG.log(System.Logger.Level.WARNING, "invalidating inode " + ino + " failed: " + e.getMessage());
                }
            } finally {
                done.complete(null);
            }
        });
        return done;
    }

    private static final ThreadLocal<Boolean> WORKER = ThreadLocal.withInitial(() -> false);

    /** Marks the calling thread as one that answers requests (a ring's thread). */
    static void markWorker() {
        WORKER.set(true);
    }

    /** Whether the calling thread is a FUSE worker (which must not wait for the kernel to drop pages). */
    public static boolean onWorker() {
        return WORKER.get();
    }

    /** Whether the connection is gone although {@link #close()} was not called. */
    public boolean isLost() {
        return lost.get();
    }

    /** Whether the kernel offered the request timeout and it was asked for (kernel 6.14 and later). */
    public boolean requestTimeoutActive() {
        return requestTimeoutAccepted;
    }

    /** The minor protocol version the kernel offered. */
    public int kernelMinor() {
        return kernelMinor;
    }

    FuseDevice device() {
        return device;
    }

    private void start(int n, int[] cpus) {
        for (int i = 0; i < n; i++) {
            Thread t = new Thread(() -> {
                pin(cpus);
                work();
            }, "fuse-" + mountPoint.getFileName() + "-" + i);
            t.setDaemon(true);
            workers.add(t);
            t.start();
        }
    }

    private static void pin(int[] cpus) {
        if (cpus.length == 0) {
            return;
        }
        long[] mask = new long[16];
        for (int c : cpus) {
            mask[c / 64] |= 1L << (c % 64);
        }
        if (LibC.sched_setaffinity(0, mask.length * 8L, mask) != 0) {
            LOG.log(System.Logger.Level.WARNING, "cannot pin FUSE worker: " + Errno.name(Errno.last()));
        }
    }

    private void work() {
        WORKER.set(true);
        ByteBuffer buf = FuseDevice.direct(FuseDevice.BUFFER_SIZE);
        Pointer at = Native.getDirectBufferPointer(buf);
        while (!closing && !paused) {
            int n;
            try {
                n = device.read(buf, at);
            } catch (NativeException e) {
                LOG.log(System.Logger.Level.ERROR, "FUSE worker stops: " + e.getMessage());
                return;
            }
            if (n < 0) {
                if (!closing && lost.compareAndSet(false, true)) {
                    String why = "the FUSE connection of " + mountPoint + " is gone (unmounted or aborted from outside)";
                    LOG.log(System.Logger.Level.ERROR, why);
                    try {
                        options.onLost().accept(why);
                    } catch (RuntimeException e) {
                        LOG.log(System.Logger.Level.ERROR, "mount-lost listener failed", e);
                    }
                }
                return;
            }
            if (n > 0) {
                dispatch(buf, n, sink);
            }
        }
    }

    /**
     * Decodes one request of {@code n} bytes and hands it to the operations; its answer goes to
     * {@code to}. False when it could not be decoded (dropped: nothing was answered).
     */
    boolean dispatch(ByteBuffer buf, int n, ReplySink to) {
        FuseRequest req;
        try {
            req = FuseRequest.decode(buf, n);
        } catch (FuseProtocolException e) {
            LOG.log(System.Logger.Level.WARNING, "dropping undecodable request: " + e.getMessage());
            return false;
        }
        FuseReply reply = new FuseReply(to, req.unique(), req.opcode());
        try {
            handle(req, reply);
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.ERROR, "request " + req + " failed; answering EIO", t);
            if (hasReply(req.opcode())) {
                reply.error(Errno.EIO);
            }
        }
        if (hasReply(req.opcode()) && !reply.isDone()) {
            // Flag first, table second, answered? third; the answer sets done, then reads the flag:
            // with both volatile, one side or the other removes it (FuseReply#pending).
            reply.pending = true;
            pending.put(req.unique(), reply);
            if (reply.isDone()) {
                pending.remove(req.unique());
            }
        }
        return true;
    }

    /**
     * A ring stopped while the kernel routes requests to it: those would wait forever, so the
     * connection is aborted (readers get errors) and reported lost, as when /dev/fuse goes away.
     */
    void ringLost(String why) {
        if (closing || !lost.compareAndSet(false, true)) {
            return;
        }
        LOG.log(System.Logger.Level.ERROR, why + "; aborting the FUSE connection of " + mountPoint);
        abortConnection();
        try {
            options.onLost().accept(why);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "mount-lost listener failed", e);
        }
    }

    private static boolean hasReply(int opcode) {
        return opcode != FuseOpcode.FORGET && opcode != FuseOpcode.BATCH_FORGET && opcode != FuseOpcode.INTERRUPT;
    }

    /**
     * Requests taken and kept to be answered later (an OPEN waiting for its key's issuance): what
     * an INTERRUPT can still reach, and what {@link #pause} waits for. 0 when every taken request
     * was answered.
     */
    public int unansweredRequests() {
        return pending.size();
    }

    void replied(FuseReply r) {
        if (r.pending) {
            pending.remove(r.unique());
        }
    }

    private void handle(FuseRequest req, FuseReply reply) {
        long node = req.nodeId();
        switch (req.opcode()) {
            case FuseOpcode.INIT -> init(req, reply);
            case FuseOpcode.DESTROY -> reply.ok();
            case FuseOpcode.FORGET -> ops.forget(node, req.bodyLong(0));  // fuse_forget_in.nlookup
            case FuseOpcode.BATCH_FORGET -> {
                int count = req.bodyInt(0);
                for (int i = 0; i < count; i++) {
                    ops.forget(req.bodyLong(8 + i * 16), req.bodyLong(16 + i * 16));
                }
            }
            case FuseOpcode.INTERRUPT -> {
                FuseReply target = pending.get(req.bodyLong(0));
                if (target != null) {
                    target.error(Errno.EINTR);
                }
            }
            case FuseOpcode.LOOKUP -> ops.lookup(req, node, req.bodyName(), reply);
            case FuseOpcode.GETATTR -> ops.getattr(req, node, reply);
            case FuseOpcode.OPEN -> ops.open(req, node, req.openIn().flags(), reply);
            case FuseOpcode.READ -> {
                FuseStructs.ReadIn in = req.readIn();
                ops.read(req, node, in.fh(), in.offset(), in.size(), reply);
            }
            case FuseOpcode.FLUSH -> ops.flush(req, node, req.bodyLong(0), reply);
            case FuseOpcode.RELEASE -> ops.release(req, node, req.bodyLong(0), reply);
            case FuseOpcode.OPENDIR -> ops.opendir(req, node, req.openIn().flags(), reply);
            case FuseOpcode.READDIR -> {
                FuseStructs.ReadIn in = req.readIn();
                ops.readdir(req, node, in.fh(), in.offset(), in.size(), reply);
            }
            case FuseOpcode.RELEASEDIR -> ops.releasedir(req, node, req.bodyLong(0), reply);
            case FuseOpcode.ACCESS -> ops.access(req, node, req.bodyInt(0), reply);
            case FuseOpcode.STATFS -> ops.statfs(req, node, reply);
            // A read-only file system: every write-style operation is EROFS, as on a read-only mount.
            case FuseOpcode.SETATTR, FuseOpcode.SYMLINK, FuseOpcode.MKNOD, FuseOpcode.MKDIR, FuseOpcode.UNLINK,
                 FuseOpcode.RMDIR, FuseOpcode.RENAME, FuseOpcode.LINK, FuseOpcode.WRITE, FuseOpcode.SETXATTR,
                 FuseOpcode.REMOVEXATTR, FuseOpcode.CREATE, FuseOpcode.FALLOCATE, FuseOpcode.RENAME2,
                 FuseOpcode.COPY_FILE_RANGE, FuseOpcode.TMPFILE -> reply.error(Errno.EROFS);
            default -> reply.error(Errno.ENOSYS);
        }
    }

    private void init(FuseRequest req, FuseReply reply) {
        FuseStructs.InitIn in = req.initIn();
        kernelMinor = in.minor();
        if (in.major() < 7 || (in.major() == 7 && in.minor() < 31)) {
            LOG.log(System.Logger.Level.ERROR, "kernel FUSE protocol " + in.major() + "." + in.minor()
                    + " is too old (need 7.31)");
            reply.error(Errno.EIO);
            return;
        }
        int ours = in.flags() & (FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS);
        boolean timeout = options.requestTimeoutSeconds() > 0 && (in.flags2() & FUSE_REQUEST_TIMEOUT_FLAGS2) != 0;
        if (timeout) {
            ours |= FUSE_INIT_EXT;
        } else if (options.requestTimeoutSeconds() > 0) {
            LOG.log(System.Logger.Level.WARNING, "this kernel (FUSE 7." + in.minor() + ") has no request timeout: a"
                    + " stopped daemon makes readers of " + mountPoint + " wait until it is killed or the mount is aborted");
        }
        requestTimeoutAccepted = timeout;
        FuseUring rings = null;
        if (options.ioUring() && in.minor() >= FuseUring.MINOR && (in.flags2() & FuseUring.FUSE_OVER_IO_URING_FLAGS2) != 0) {
            try {
                rings = FuseUring.prepare(this, device.fd(), URING_DEPTH, FuseDevice.BUFFER_SIZE);
            } catch (NativeException | RuntimeException e) {
                LOG.log(System.Logger.Level.WARNING, "the kernel offers FUSE over io_uring but no ring could be set up here ("
                        + e.getMessage() + "): requests go through /dev/fuse reads");
            }
        }
        int flags2 = (timeout ? FUSE_REQUEST_TIMEOUT_FLAGS2 : 0) | (rings != null ? FuseUring.FUSE_OVER_IO_URING_FLAGS2 : 0);
        if (flags2 != 0) {
            ours |= FUSE_INIT_EXT;
        }
        FuseStructs.InitOut out = new FuseStructs.InitOut(7, MINOR, 0, ours, (short) 16, (short) 12, FuseDevice.MAX_WRITE,
                1, (short) 0, (short) 0, flags2, 0, timeout ? (short) options.requestTimeoutSeconds() : 0);
        ByteBuffer b = device.replyBuffer();
        out.encode(b, FuseReply.OUT_HEADER);
        reply.raw(b, FuseStructs.InitOut.SIZE);
        if (rings != null) {
            // The kernel holds new requests until every ring has registered its entries.
            uring = rings;
            rings.start(mountPoint.getFileName().toString());
        }
        initialised.countDown();
    }

    /** Unmounts (lazily, so open files do not block it), stops the workers and closes the device. */
    @Override
    public void close() {
        if (closing) {
            return;
        }
        closing = true;
        notifier.shutdownNow();
        try {
            Mounts.detach(mountPoint);
        } catch (NativeException e) {
            if (e.errno() != Errno.EINVAL) {
                LOG.log(System.Logger.Level.WARNING, "unmount of " + mountPoint + " failed: " + e.getMessage());
            }
        }
        FuseUring rings = uring;
        if (rings != null) {
            rings.close();
        }
        for (Thread t : workers) {
            try {
                t.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (workers.stream().anyMatch(Thread::isAlive) || (rings != null && rings.threadsAlive())) {
            abortConnection();
        }
        for (FuseReply r : pending.values()) {
            r.error(Errno.EIO);
        }
        device.close();
    }

    /** Files still open on a detached mount keep the connection alive: abort it through fusectl. */
    private void abortConnection() {
        FuseConnection.abort(connectionId);
    }
}
