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
 * <p>In shards ({@link RelayShard}): each has its own level-triggered epoll (the public socket, which
 * every shard waits on and one takes each connection from, and its links' two ends) and is run by
 * one thread — a Netty event loop with the shard's epoll nested in the loop's ({@link #onLoop}), so
 * that the relay and the HTTP server it feeds on that loop share a thread and a request crosses none,
 * or a thread of its own where a loop cannot take it ({@link #onThread}). Non-blocking sockets; a
 * side that cannot take more stops the reading of the other (no unbounded buffering: at most one
 * chunk per direction waits).
 *
 * <p>Over 400 lines: the relay's shared state, its links ({@link Link}, which the gateway's server
 * reads) and the two ways of running a shard, each bound to the relay's lifecycle; a shard's own
 * event handling is {@link RelayShard}.
 */
final class WriterRelay implements AutoCloseable {
    static final Logger LOG = LoggerFactory.getLogger(WriterRelay.class);
    static final int CHUNK = 16 * 1024;
    static final long LISTENER = -1;
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
        // its shard's own (one thread's)
        Memory toInternal;
        int toInternalAt;
        int toInternalLen;
        Memory toClient;
        int toClientAt;
        int toClientLen;
        boolean clientEof;
        boolean internalEof;
        int clientMask = Epoll.IN;
        int internalMask = Epoll.IN;

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

        synchronized void pin(int fd, int pid, int uid, int gid) {
            if (released) {
                LibC.close(fd);
                return;
            }
            this.pidfd = fd;
            this.uid = uid;
            this.gid = gid;
            this.pid = pid;
        }

        synchronized boolean pinned() {
            return pidfd >= 0;
        }

        /**
         * True while the pinned writer has not exited: then its pid names it and no other process
         * (a number is given again only once its process is gone).
         */
        synchronized boolean writerAlive() {
            return !released && pidfd >= 0 && Pidfd.alive(pidfd);
        }

        synchronized void release() {
            released = true;
            if (pidfd >= 0) {
                LibC.close(pidfd);
                pidfd = -1;
            }
        }
    }

    final Runnable onRefusal;
    /** The public socket, shared by every shard (each waits for it; one takes each connection). */
    final int listening;
    /** Every shard's links, by the inode of the relay's end toward the server (what the server sees). */
    final Map<Long, Link> byInode = new ConcurrentHashMap<>();
    private final java.util.List<RelayShard> shards = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final AtomicLong lastWarn = new AtomicLong();
    private final AtomicLong refusedSinceWarn = new AtomicLong();
    volatile boolean running = true;

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
    RelayShard onLoop(io.netty.channel.IoEventLoop loop, Path internalPath) throws NativeException {
        if (!loop.isCompatible(LoopDriver.class)) {
            return null;
        }
        RelayShard sh = new RelayShard(this, internalPath);
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
            if (d.registration != null) {
                d.registration.cancel();
            }
            sh.release();
            throw e;
        }
        shards.add(sh);
        return sh;
    }

    /** A shard on a thread of its own ({@code kw-gateway-relay}), relaying to {@code internalPath}. */
    RelayShard onThread(Path internalPath) throws NativeException {
        RelayShard sh = new RelayShard(this, internalPath);
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
    interface Driver {
        /** Try accepting again in a second (accepting paused: out of descriptors). */
        void retryAcceptLater();

        /** Stops the shard and releases it, on its own thread; returns once done (or after 5 s). */
        void stop();
    }

    /** The shard's epoll descriptor registered with a Netty event loop, handled on that loop's thread. */
    private final class LoopDriver implements io.netty.channel.epoll.EpollIoHandle, Driver {
        private final RelayShard shard;
        private final io.netty.channel.IoEventLoop loop;
        private final io.netty.channel.unix.FileDescriptor fd;
        private volatile io.netty.channel.IoRegistration registration;
        private boolean retryArmed;

        LoopDriver(RelayShard shard, io.netty.channel.IoEventLoop loop) {
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
        private final RelayShard shard;
        private final int wake;
        private final Thread thread;

        ThreadDriver(RelayShard shard) throws NativeException {
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


    /** A connection closed for what its writer did: said at most every 10 s, with how many since. */
    void refused(String why) {
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
        for (RelayShard sh : shards) {
            if (sh.driver != null) {
                sh.driver.stop();
            }
        }
        LibC.close(listening);
    }
}
