package io.keywarden.daemon.gateway;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import io.keywarden.linux.Epoll;
import io.keywarden.linux.LibC;
import io.keywarden.linux.NativeException;
import io.keywarden.linux.Pidfd;
import io.keywarden.linux.WriterSocket;
import io.netty.util.collection.IntObjectHashMap;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's Unix socket, relayed so that every byte is known by the process that wrote it.
 * The kernel attaches the writer to each message on this socket ({@link WriterSocket}): the first
 * chunk of a connection pins it to its writer by a pidfd (a descriptor of that very process, which
 * no later process can take the number of), and every later chunk must come from the same pid while
 * that pidfd names a live process. A chunk written by any other process (a child it forked, a
 * process it passed the socket to, a process that took its pid), or carrying file descriptors, is
 * never relayed: the connection is closed. The bytes that pass go on to the gateway's HTTP server on
 * an internal socket in a directory only the daemon's user can enter; the server finds the
 * connection's writer by the inode of the relay's end of it ({@link #linkOf}).
 *
 * <p>This replaces, on the Unix socket, the pass over every process's descriptors that loopback TCP
 * needs at each request (TCP says nothing of who wrote a segment). What it does not do: a process
 * that shares its connection (fork, {@code SCM_RIGHTS}) shares the answers it reads, as a shared
 * descriptor of an opened key file shares the key; only what the pinned process writes is served.
 *
 * <p>One thread, level-triggered epoll, non-blocking sockets; a side that cannot take more stops the
 * reading of the other (no unbounded buffering: at most one chunk per direction waits).
 *
 * <p>Over 400 lines: the relay's one event loop — accept, judge each chunk's writer, both directions
 * with their back-pressure, close — is one piece of logic on one thread's state; a connection's
 * state that the gateway's event loop reads ({@link Link}) is its own class inside.
 */
final class WriterRelay implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(WriterRelay.class);
    private static final int CHUNK = 16 * 1024;
    private static final long LISTENER = -1;
    private static final long WAKE = -2;

    /** One relayed connection: the client's socket, the relay's end toward the server, and the pinned writer. */
    static final class Link {
        final int client;
        final int internal;
        final long internalInode;
        /** The uid that connected (SO_PEERCRED at accept): what the connection bounds count it against. */
        final int connectorUid;
        /** The thread of the shard that took it: the server's side of it should run there too. */
        final Thread shardThread = Thread.currentThread();
        private volatile int pid;
        private volatile int uid;
        private volatile int gid;
        private int pidfd = -1;
        private boolean released;
        // the relay thread's own
        private Memory toInternal;
        private int toInternalAt;
        private int toInternalLen;
        private Memory toClient;
        private int toClientAt;
        private int toClientLen;
        private boolean clientEof;
        private boolean internalEof;
        private int clientMask = Epoll.IN;
        private int internalMask = Epoll.IN;

        Link(int client, int internal, long internalInode, int connectorUid) {
            this.client = client;
            this.internal = internal;
            this.internalInode = internalInode;
            this.connectorUid = connectorUid;
        }

        /** The pid of the process that wrote the connection's bytes; 0 before its first byte. */
        int pid() {
            return pid;
        }

        int uid() {
            return uid;
        }

        int gid() {
            return gid;
        }

        private synchronized void pin(int fd, int pid, int uid, int gid) {
            if (released) {
                LibC.close(fd);
                return;
            }
            this.pidfd = fd;
            this.uid = uid;
            this.gid = gid;
            this.pid = pid;
        }

        private synchronized boolean pinned() {
            return pidfd >= 0;
        }

        /**
         * True while the pinned writer has not exited: then its pid names it and no other process
         * (a number is given again only once its process is gone).
         */
        synchronized boolean writerAlive() {
            return !released && pidfd >= 0 && Pidfd.alive(pidfd);
        }

        private synchronized void release() {
            released = true;
            if (pidfd >= 0) {
                LibC.close(pidfd);
                pidfd = -1;
            }
        }
    }

    private final Runnable onRefusal;
    /** The public socket, shared by every shard (each waits for it; one takes each connection). */
    private final int listening;
    /** Every shard's links, by the inode of the relay's end toward the server (what the server sees). */
    private final Map<Long, Link> byInode = new ConcurrentHashMap<>();
    private final java.util.List<Shard> shards = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final AtomicLong lastWarn = new AtomicLong();
    private final AtomicLong refusedSinceWarn = new AtomicLong();
    private volatile boolean running = true;

    private WriterRelay(int listening, Runnable onRefusal) {
        this.listening = listening;
        this.onRefusal = onRefusal;
    }

    /** True when this kernel says who wrote each message (SO_PASSPIDFD, Linux 6.5). */
    static boolean supported() {
        return WriterSocket.supported();
    }

    /**
     * Listens at {@code at} (the caller has placed the path); connections wait in the backlog until a
     * shard ({@link #onLoop}, {@link #onThread}) takes them. {@code onRefusal}: run (on the shard's
     * thread) for each connection closed for what its writer did.
     */
    static WriterRelay listen(Path at, Runnable onRefusal) throws NativeException {
        return new WriterRelay(WriterSocket.listen(at, 1024), onRefusal);
    }

    /** A relay with one shard on a thread of its own, toward {@code internalPath}. */
    static WriterRelay start(Path at, Path internalPath, Runnable onRefusal) throws NativeException {
        WriterRelay r = listen(at, onRefusal);
        try {
            r.onThread(internalPath);
        } catch (NativeException | RuntimeException e) {
            r.close();
            throw e;
        }
        return r;
    }

    /**
     * A shard run by Netty's event loop {@code loop} (its epoll descriptor registered there, handled
     * on that loop's thread), relaying the connections it takes to {@code internalPath}, whose HTTP
     * server runs on the same loop: a request then crosses no thread between the relay and the
     * server (each crossing wakes a thread, ~0.1 ms on this VM by GatewayBench). Null when the loop
     * cannot take an epoll descriptor (then {@link #onThread}).
     */
    Shard onLoop(io.netty.channel.IoEventLoop loop, Path internalPath) throws NativeException {
        if (!loop.isCompatible(LoopDriver.class)) {
            return null;
        }
        Shard sh = new Shard(internalPath);
        LoopDriver d = new LoopDriver(sh, loop);
        sh.driver = d;
        try {
            // On the loop's own thread (a deployment's start) this registers at once.
            io.netty.util.concurrent.Future<io.netty.channel.IoRegistration> f = loop.register(d);
            if (!loop.inEventLoop()) {
                f.awaitUninterruptibly(5, java.util.concurrent.TimeUnit.SECONDS);
            }
            if (!f.isSuccess()) {
                throw new IllegalStateException("the relay's shard could not join its event loop: "
                        + (f.cause() == null ? "not within 5 s" : f.cause().toString()));
            }
            d.registration = f.getNow();
            // Level-triggered: while an event of the shard is ready, the loop calls it again.
            d.registration.submit(io.netty.channel.epoll.EpollIoOps.EPOLLIN);
        } catch (RuntimeException e) {
            sh.release();
            throw e;
        }
        shards.add(sh);
        return sh;
    }

    /** A shard on a thread of its own ({@code kw-gateway-relay}), relaying to {@code internalPath}. */
    Shard onThread(Path internalPath) throws NativeException {
        Shard sh = new Shard(internalPath);
        ThreadDriver d;
        try {
            d = new ThreadDriver(sh);
        } catch (NativeException | RuntimeException e) {
            sh.release();
            throw e;
        }
        sh.driver = d;
        shards.add(sh);
        d.thread.start();
        return sh;
    }

    /** The connection whose relay end has inode {@code inode} (the server's peer), or null: not one of ours. */
    Link linkOf(long inode) {
        return byInode.get(inode);
    }

    /** What runs a shard: a Netty event loop or a thread of its own. */
    private interface Driver {
        /** Try accepting again in a second (accepting paused: out of descriptors). */
        void retryAcceptLater();

        /** Stops the shard and releases it, on its own thread; returns once done (or after 5 s). */
        void stop();
    }

    /** The shard's epoll descriptor registered with a Netty event loop, handled on that loop's thread. */
    private final class LoopDriver implements io.netty.channel.epoll.EpollIoHandle, Driver {
        private final Shard shard;
        private final io.netty.channel.IoEventLoop loop;
        private final io.netty.channel.unix.FileDescriptor fd;
        private volatile io.netty.channel.IoRegistration registration;
        private boolean retryArmed;

        LoopDriver(Shard shard, io.netty.channel.IoEventLoop loop) {
            this.shard = shard;
            this.loop = loop;
            this.fd = new io.netty.channel.unix.FileDescriptor(shard.epoll.fd());
        }

        @Override
        public io.netty.channel.unix.FileDescriptor fd() {
            return fd;
        }

        @Override
        public void handle(io.netty.channel.IoRegistration reg, io.netty.channel.IoEvent event) {
            if (!running) {
                return;
            }
            try {
                // Level-triggered both ways: what is left after this pass makes the loop call again.
                shard.dispatch(shard.epoll.await(0));
            } catch (NativeException | RuntimeException e) {
                stopped(e);
                reg.cancel();
            }
        }

        @Override
        public void retryAcceptLater() {
            if (!retryArmed) {
                retryArmed = true;
                loop.schedule(() -> {
                    retryArmed = false;
                    shard.resumeAccepting();
                }, 1, java.util.concurrent.TimeUnit.SECONDS);
            }
        }

        @Override
        public void stop() {
            Runnable stop = () -> {
                io.netty.channel.IoRegistration r = registration;
                if (r != null) {
                    r.cancel();
                }
                shard.release();
            };
            if (loop.inEventLoop()) {
                stop.run();
                return;
            }
            try {
                if (!loop.submit(stop).await(5, java.util.concurrent.TimeUnit.SECONDS)) {
                    LOG.warn("gateway socket: a relay shard did not stop within 5 s");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (java.util.concurrent.RejectedExecutionException e) {
                // The loop is gone: nothing runs the shard any more.
                stop.run();
            }
        }

        @Override
        public void close() {
            // The descriptor is the shard's epoll: released with the shard, never by Netty.
        }
    }

    /** A shard on its own thread, woken by an eventfd to stop. */
    private final class ThreadDriver implements Driver {
        private final Shard shard;
        private final int wake;
        private final Thread thread;

        ThreadDriver(Shard shard) throws NativeException {
            this.shard = shard;
            int w = LibC.eventfd(0, LibC.O_CLOEXEC | LibC.SOCK_NONBLOCK);
            if (w < 0) {
                throw new NativeException("eventfd", io.keywarden.linux.Errno.last());
            }
            try {
                shard.epoll.add(w, Epoll.IN, WAKE);
            } catch (NativeException e) {
                LibC.close(w);
                throw e;
            }
            this.wake = w;
            this.thread = new Thread(this::loop, "kw-gateway-relay");
            this.thread.setDaemon(true);
        }

        private void loop() {
            try {
                while (running) {
                    // While accepting is paused, try again each second even if no connection closes.
                    int n = shard.epoll.await(shard.acceptPaused ? 1000 : -1);
                    if (n == 0 && shard.acceptPaused) {
                        shard.resumeAccepting();
                    }
                    for (int i = 0; i < n; i++) {
                        if (shard.epoll.tag(i) == WAKE) {
                            return;
                        }
                    }
                    shard.dispatch(n);
                }
            } catch (NativeException | RuntimeException e) {
                stopped(e);
            } finally {
                shard.release();
                LibC.close(wake);
            }
        }

        @Override
        public void retryAcceptLater() {
            // The loop's wait times out each second while accepting is paused.
        }

        @Override
        public void stop() {
            Memory one = new Memory(8);
            one.setLong(0, 1);
            LibC.write(wake, one, 8);
            one.close();
            try {
                thread.join(5_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** A shard stopped on an error of its own epoll: the socket is shut so that connects fail at once. */
    private void stopped(Exception e) {
        if (running) {
            // Refused, not left waiting: a connect to a shut listener fails at once (ECONNREFUSED).
            LibC.shutdown(listening, 2);
            LOG.error("gateway socket: the relay stopped: {}; connections to the gateway socket are refused until"
                    + " the daemon restarts", e.toString());
        }
    }

    /**
     * One share of the relay: its own epoll (the public socket, its links' two ends), its links by
     * descriptor, its receive buffers; used by one thread only (its driver's).
     */
    final class Shard {
        private final Path internalPath;
        private final Epoll epoll;
        private final WriterSocket.Receiver rx = new WriterSocket.Receiver(CHUNK);
        private final Memory readBuf = new Memory(CHUNK);
        private final IntObjectHashMap<Link> byFd = new IntObjectHashMap<>();
        private boolean acceptPaused;
        private boolean released;
        private Driver driver;

        private Shard(Path internalPath) throws NativeException {
            this.internalPath = internalPath;
            Epoll ep = new Epoll(256);
            try {
                ep.add(listening, Epoll.IN, LISTENER);
            } catch (NativeException | RuntimeException e) {
                ep.close();
                rx.close();
                readBuf.close();
                throw e;
            }
            this.epoll = ep;
        }

        /** Handles the {@code n} events of the last wait. */
        private void dispatch(int n) throws NativeException {
            for (int i = 0; i < n && running; i++) {
                long tag = epoll.tag(i);
                int mask = epoll.mask(i);
                if (tag == LISTENER) {
                    acceptAll();
                } else if (tag >= 0) {
                    Link k = byFd.get((int) tag);
                    if (k != null) {
                        try {
                            ready(k, (int) tag, mask);
                        } catch (NativeException | RuntimeException e) {
                            // One connection's trouble is its own: it is closed, the relay goes on.
                            LOG.debug("gateway socket: a relayed connection failed: {}", e.toString());
                            close(k);
                        }
                    }
                }
            }
        }

        /** Closes every link of this shard and its own descriptors (on its thread, once). */
        private void release() {
            if (released) {
                return;
            }
            released = true;
            for (Link k : new java.util.ArrayList<>(byFd.values())) {
                close(k);
            }
            epoll.close();
            rx.close();
            readBuf.close();
        }

        private void acceptAll() throws NativeException {
            while (true) {
                int c;
                int internal;
                try {
                    c = WriterSocket.accept(listening);
                } catch (NativeException e) {
                    pauseAccepting(e);
                    return;
                }
                if (c == WriterSocket.AGAIN) {
                    return;
                }
                int connector = io.keywarden.linux.PeerCred.find(c).map(io.keywarden.linux.PeerCred::uid).orElse(-2);
                try {
                    internal = WriterSocket.open();
                } catch (NativeException e) {
                    LibC.close(c);
                    pauseAccepting(e);
                    return;
                }
                Link k = new Link(c, internal, WriterSocket.inode(internal), connector);
                // Known by its inode before the server can see it.
                byInode.put(k.internalInode, k);
                byFd.put(c, k);
                byFd.put(internal, k);
                try {
                    WriterSocket.connect(internal, internalPath);
                } catch (NativeException e) {
                    // The server's backlog is full (or it is closing): this client is closed, the next may pass.
                    close(k);
                    refused("the gateway's server did not take the connection (" + e.getMessage() + ")");
                    continue;
                }
                try {
                    epoll.add(c, Epoll.IN, c);
                    epoll.add(internal, Epoll.IN, internal);
                } catch (NativeException e) {
                    close(k);
                }
            }
        }

        /**
         * Out of descriptors (or another accept error): stop taking connections until one closes, so that
         * the waiting ones do not spin this thread; the error is said (at most every 10 s).
         */
        private void pauseAccepting(NativeException e) throws NativeException {
            refused("cannot take a connection now: " + e.getMessage() + "; new ones wait until one closes");
            if (!acceptPaused) {
                acceptPaused = true;
                epoll.modify(listening, 0, LISTENER);
            }
        }

        private void resumeAccepting() {
            if (acceptPaused) {
                acceptPaused = false;
                try {
                    epoll.modify(listening, Epoll.IN, LISTENER);
                } catch (NativeException e) {
                    LOG.error("gateway socket: cannot wait for connections again: {}", e.toString());
                }
            }
        }

        private void ready(Link k, int fd, int mask) throws NativeException {
            if (fd == k.client) {
                if ((mask & (Epoll.HUP | Epoll.ERR)) != 0) {
                    // Gone both ways: nobody is left to answer.
                    close(k);
                    return;
                }
                if ((mask & Epoll.OUT) != 0 && !flush(k, false)) {
                    return;
                }
                if ((mask & Epoll.IN) != 0 && !fromClient(k)) {
                    return;
                }
            } else {
                if ((mask & Epoll.OUT) != 0 && !flush(k, true)) {
                    return;
                }
                if ((mask & (Epoll.IN | Epoll.HUP | Epoll.ERR)) != 0 && !fromServer(k)) {
                    return;
                }
            }
            interest(k);
        }

        /** The client's chunks, each judged by its writer, on to the server; false once the link is closed. */
        private boolean fromClient(Link k) {
            while (k.toInternalLen == 0 && !k.clientEof) {
                long n;
                try {
                    n = rx.receive(k.client);
                } catch (NativeException e) {
                    close(k);
                    return false;
                }
                if (n == WriterSocket.AGAIN) {
                    return true;
                }
                if (n == 0) {
                    k.clientEof = true;
                    LibC.shutdown(k.internal, 1);
                    return true;
                }
                String refusal = judge(k);
                if (refusal != null) {
                    onRefusal.run();
                    refused(refusal);
                    close(k);
                    return false;
                }
                if (!send(k, k.internal, rx.data(), (int) n, true)) {
                    return false;
                }
            }
            return true;
        }

        /** Null when the chunk just received may be relayed on {@code k}, else why not (no byte of it is). */
        private String judge(Link k) {
            int fd = rx.pidfd();
            try {
                if (rx.descriptorsSent()) {
                    return "file descriptors were sent over the gateway socket by pid " + rx.pid();
                }
                if (rx.pid() <= 0) {
                    return "bytes written by a process this daemon cannot see (another pid namespace)";
                }
                if (k.pinned()) {
                    if (rx.pid() != k.pid() || rx.uid() != k.uid()) {
                        return "pid " + rx.pid() + " (uid " + Integer.toUnsignedString(rx.uid()) + ") wrote on a connection"
                                + " of pid " + k.pid() + " (uid " + Integer.toUnsignedString(k.uid()) + ")";
                    }
                    if (!k.writerAlive()) {
                        return "pid " + k.pid() + " wrote on a connection whose first writer of that pid has exited"
                                + " (a reused pid)";
                    }
                    return null;
                }
                if (fd < 0) {
                    return "the writer of a connection's first bytes (pid " + rx.pid() + ") exited before it could be"
                            + " identified";
                }
                k.pin(fd, rx.pid(), rx.uid(), rx.gid());
                fd = -1;
                // Known now: later chunks are checked by pid against the pinned descriptor, no new one each.
                WriterSocket.passPidfd(k.client, false);
                return null;
            } finally {
                if (fd >= 0) {
                    LibC.close(fd);
                }
            }
        }

        /** The server's bytes on to the client; false once the link is closed. */
        private boolean fromServer(Link k) {
            while (k.toClientLen == 0 && !k.internalEof) {
                long n = LibC.read(k.internal, readBuf, CHUNK);
                if (n < 0) {
                    int e = io.keywarden.linux.Errno.last();
                    if (e == io.keywarden.linux.Errno.EAGAIN) {
                        return true;
                    }
                    if (e == io.keywarden.linux.Errno.EINTR) {
                        continue;
                    }
                    close(k);
                    return false;
                }
                if (n == 0) {
                    // The server is done with the connection (answered and closed, or over a bound): what
                    // it said reaches the client first.
                    k.internalEof = true;
                    epoll.remove(k.internal);
                    if (k.toClientLen == 0) {
                        close(k);
                        return false;
                    }
                    return true;
                }
                if (!send(k, k.client, readBuf, (int) n, false)) {
                    return false;
                }
            }
            return true;
        }

        /** Sends what it can of {@code n} bytes; keeps the rest for when {@code to} can take it. False once closed. */
        private boolean send(Link k, int to, Pointer data, int n, boolean toServer) {
            int off = sendWhatFits(k, to, data, 0, n);
            if (off < 0) {
                return false;
            }
            if (off < n) {
                Memory rest = toServer ? k.toInternal : k.toClient;
                if (rest == null) {
                    rest = new Memory(CHUNK);
                }
                rest.write(0, data.getByteArray(off, n - off), 0, n - off);
                if (toServer) {
                    k.toInternal = rest;
                    k.toInternalAt = 0;
                    k.toInternalLen = n - off;
                } else {
                    k.toClient = rest;
                    k.toClientAt = 0;
                    k.toClientLen = n - off;
                }
            }
            return true;
        }

        /** Sends {@code data[from, to)} until {@code fd} takes no more; where it stopped, or -1 once the link is closed. */
        private int sendWhatFits(Link k, int fd, Pointer data, int from, int to) {
            int off = from;
            while (off < to) {
                long sent;
                try {
                    sent = WriterSocket.send(fd, data.share(off), to - off);
                } catch (NativeException e) {
                    close(k);
                    return -1;
                }
                if (sent == WriterSocket.AGAIN) {
                    break;
                }
                off += (int) sent;
            }
            return off;
        }

        /** Sends what waits toward the server ({@code toServer}) or the client; false once closed. */
        private boolean flush(Link k, boolean toServer) {
            Memory m = toServer ? k.toInternal : k.toClient;
            int at = toServer ? k.toInternalAt : k.toClientAt;
            int len = toServer ? k.toInternalLen : k.toClientLen;
            int reached = sendWhatFits(k, toServer ? k.internal : k.client, m, at, at + len);
            if (reached < 0) {
                return false;
            }
            len -= reached - at;
            at = reached;
            if (toServer) {
                k.toInternalAt = at;
                k.toInternalLen = len;
                if (len == 0 && k.clientEof) {
                    LibC.shutdown(k.internal, 1);
                }
            } else {
                k.toClientAt = at;
                k.toClientLen = len;
                if (len == 0 && k.internalEof) {
                    close(k);
                    return false;
                }
            }
            return true;
        }

        /** What each side is waited on for: read while the other side has nothing waiting, write while something waits. */
        private void interest(Link k) throws NativeException {
            if (!byFd.containsKey(k.client)) {
                return;
            }
            // Only a change is told to the kernel (a system call each): most events change nothing.
            int client = (k.toInternalLen == 0 && !k.clientEof ? Epoll.IN : 0) | (k.toClientLen > 0 ? Epoll.OUT : 0);
            if (client != k.clientMask) {
                epoll.modify(k.client, client, k.client);
                k.clientMask = client;
            }
            if (!k.internalEof) {
                int internal = (k.toClientLen == 0 ? Epoll.IN : 0) | (k.toInternalLen > 0 ? Epoll.OUT : 0);
                if (internal != k.internalMask) {
                    epoll.modify(k.internal, internal, k.internal);
                    k.internalMask = internal;
                }
            }
        }

        private void close(Link k) {
            if (byFd.remove(k.client) == null) {
                return;
            }
            byFd.remove(k.internal);
            byInode.remove(k.internalInode);
            epoll.remove(k.client);
            if (!k.internalEof) {
                epoll.remove(k.internal);
            }
            LibC.close(k.client);
            LibC.close(k.internal);
            k.release();
            resumeAccepting();
            if (k.toInternal != null) {
                k.toInternal.close();
            }
            if (k.toClient != null) {
                k.toClient.close();
            }
        }

    }

    /** A connection closed for what its writer did: said at most every 10 s, with how many since. */
    private void refused(String why) {
        long count = refusedSinceWarn.incrementAndGet();
        long now = System.nanoTime();
        long last = lastWarn.get();
        if (now - last > 10_000_000_000L && lastWarn.compareAndSet(last, now)) {
            refusedSinceWarn.set(0);
            LOG.warn("gateway socket: a connection was closed unrelayed: {} ({} such in the last 10 s)", why, count);
        }
    }

    /** Connections relayed now (for tests). */
    int links() {
        return byInode.size();
    }

    @Override
    public void close() {
        if (!running) {
            return;
        }
        running = false;
        for (Shard sh : shards) {
            if (sh.driver != null) {
                sh.driver.stop();
            }
        }
        LibC.close(listening);
    }
}
