package io.keywarden.daemon.gateway;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import io.keywarden.linux.Epoll;
import io.keywarden.linux.LibC;
import io.keywarden.linux.NativeException;
import io.keywarden.linux.WriterSocket;
import io.netty.util.collection.IntObjectHashMap;
import java.nio.file.Path;

/**
 * One share of the gateway socket's relay ({@link WriterRelay}): its own level-triggered epoll (the
 * public socket, its links' two ends), its links by descriptor, its receive buffers; used by one
 * thread only, its driver's (a Netty event loop, or a thread of its own). It accepts connections,
 * judges the writer of every chunk a client sends ({@link #judge}), relays both ways with
 * back-pressure to the internal socket of the HTTP server it feeds, and closes links.
 */
final class RelayShard {
    private final WriterRelay relay;
    private final Path internalPath;
    final Epoll epoll;
    private final WriterSocket.Receiver rx = new WriterSocket.Receiver(WriterRelay.CHUNK);
    private final Memory readBuf = new Memory(WriterRelay.CHUNK);
    private final IntObjectHashMap<WriterRelay.Link> byFd = new IntObjectHashMap<>();
    boolean acceptPaused;
    private boolean released;
    WriterRelay.Driver driver;

    RelayShard(WriterRelay relay, Path internalPath) throws NativeException {
        this.relay = relay;
        this.internalPath = internalPath;
        Epoll ep = new Epoll(256);
        try {
            ep.add(relay.listening, Epoll.IN, WriterRelay.LISTENER);
        } catch (NativeException | RuntimeException e) {
            ep.close();
            rx.close();
            readBuf.close();
            throw e;
        }
        this.epoll = ep;
    }

    /** Handles the {@code n} events of the last wait. */
    void dispatch(int n) throws NativeException {
        for (int i = 0; i < n && relay.running; i++) {
            long tag = epoll.tag(i);
            int mask = epoll.mask(i);
            if (tag == WriterRelay.LISTENER) {
                acceptAll();
            } else if (tag >= 0) {
                WriterRelay.Link k = byFd.get((int) tag);
                if (k != null) {
                    try {
                        ready(k, (int) tag, mask);
                    } catch (NativeException | RuntimeException e) {
                        // One connection's trouble is its own: it is closed, the relay goes on.
                        WriterRelay.LOG.debug("gateway socket: a relayed connection failed: {}", e.toString());
                        close(k);
                    }
                }
            }
        }
    }

    /** Closes every link of this shard and its own descriptors (on its thread, once). */
    void release() {
        if (released) {
            return;
        }
        released = true;
        for (WriterRelay.Link k : new java.util.ArrayList<>(byFd.values())) {
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
                c = WriterSocket.accept(relay.listening);
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
            WriterRelay.Link k = new WriterRelay.Link(c, internal, WriterSocket.inode(internal), connector);
            // Known by its inode before the server can see it.
            relay.byInode.put(k.internalInode, k);
            byFd.put(c, k);
            byFd.put(internal, k);
            try {
                WriterSocket.connect(internal, internalPath);
            } catch (NativeException e) {
                // The server's backlog is full (or it is closing): this client is closed, the next may pass.
                close(k);
                relay.refused("the gateway's server did not take the connection (" + e.getMessage() + ")");
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
     * Out of descriptors (or another accept error): stop taking connections until one closes or a
     * second passes, so that the waiting ones do not spin this thread; the error is said (at most
     * every 10 s).
     */
    void pauseAccepting(NativeException e) throws NativeException {
        relay.refused("cannot take a connection now: " + e.getMessage() + "; new ones wait until one closes");
        if (!acceptPaused) {
            acceptPaused = true;
            epoll.modify(relay.listening, 0, WriterRelay.LISTENER);
            // Tried again in a second even if no connection closes (the thread's wait times out; a
            // loop schedules it).
            driver.retryAcceptLater();
        }
    }

    void resumeAccepting() {
        if (acceptPaused) {
            acceptPaused = false;
            try {
                epoll.modify(relay.listening, Epoll.IN, WriterRelay.LISTENER);
            } catch (NativeException e) {
                WriterRelay.LOG.error("gateway socket: cannot wait for connections again: {}", e.toString());
            }
        }
    }

    private void ready(WriterRelay.Link k, int fd, int mask) throws NativeException {
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
    private boolean fromClient(WriterRelay.Link k) {
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
                relay.onRefusal.run();
                relay.refused(refusal);
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
    private String judge(WriterRelay.Link k) {
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
    private boolean fromServer(WriterRelay.Link k) {
        while (k.toClientLen == 0 && !k.internalEof) {
            long n = LibC.read(k.internal, readBuf, WriterRelay.CHUNK);
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
    private boolean send(WriterRelay.Link k, int to, Pointer data, int n, boolean toServer) {
        int off = sendWhatFits(k, to, data, 0, n);
        if (off < 0) {
            return false;
        }
        if (off < n) {
            Memory rest = toServer ? k.toInternal : k.toClient;
            if (rest == null) {
                rest = new Memory(WriterRelay.CHUNK);
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
    private int sendWhatFits(WriterRelay.Link k, int fd, Pointer data, int from, int to) {
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
    private boolean flush(WriterRelay.Link k, boolean toServer) {
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
    private void interest(WriterRelay.Link k) throws NativeException {
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

    private void close(WriterRelay.Link k) {
        if (byFd.remove(k.client) == null) {
            return;
        }
        byFd.remove(k.internal);
        relay.byInode.remove(k.internalInode);
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
