package io.keywarden.daemon.gateway;

import io.keywarden.daemon.ops.GatewayMetrics;
import io.keywarden.daemon.ops.GatewayMetrics.Outcome;
import io.keywarden.delivery.Caller;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.SocketAddress;
import io.keywarden.daemon.net.ChannelFd;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's accepted connections and what they may hold: the bounds on connections (in all
 * and per uid of the client socket's owner, refused ones never counted), the idle timer, and the
 * request-body bytes in memory (in all, and a quarter per uid). A bound reached is said at most
 * every 10 s.
 */
final class GatewayConnections {
    private static final Logger LOG = LoggerFactory.getLogger(GatewayConnections.class);

    private final Vertx vertx;
    private final GatewaySettings.Limits limits;
    private final long maxBodyBytes;
    private final GatewayMetrics metrics;
    private final PeerLookup peers;
    /** Open connections, in all and per uid of the socket's owner. */
    private final java.util.concurrent.atomic.AtomicInteger openConnections = new java.util.concurrent.atomic.AtomicInteger();
    private final Map<Integer, java.util.concurrent.atomic.AtomicLong> connectionsByUid = new ConcurrentHashMap<>();
    /** Request-body bytes held in memory right now, in all and per uid. */
    private final java.util.concurrent.atomic.AtomicLong buffered = new java.util.concurrent.atomic.AtomicLong();
    private final Map<Integer, java.util.concurrent.atomic.AtomicLong> bufferedByUid = new ConcurrentHashMap<>();

    GatewayConnections(Vertx vertx, GatewaySettings config, GatewayMetrics metrics, PeerLookup peers) {
        this.vertx = vertx;
        this.limits = config.limits();
        this.maxBodyBytes = config.maxBodyBytes();
        this.metrics = metrics;
        this.peers = peers;
    }

    /** The connection's state, or null when it was never {@link #opened}. */
    Conn get(HttpConnection c) {
        return conns.get(c);
    }

    private final Map<HttpConnection, Conn> conns = new ConcurrentHashMap<>();
    /** Relayed connections served on another thread than their relay shard's (none when each shard feeds its loop's server). */
    final java.util.concurrent.atomic.AtomicLong crossThreadLinks = new java.util.concurrent.atomic.AtomicLong();
    /** The event loops that have taken a connection (the threads' names): each listener has one server per loop. */
    final java.util.Set<String> loopsServing = ConcurrentHashMap.newKeySet();
    private final java.util.concurrent.atomic.AtomicLong lastLimitLog = new java.util.concurrent.atomic.AtomicLong();

    /** A new connection: counted against the bounds (closed at once beyond them), idle-timed until its first request. */
    Conn opened(HttpConnection c, GatewayServer.Via via) {
        Conn existing = conns.get(c);
        if (existing != null) {
            return existing;
        }
        WriterRelay r = relay;
        WriterRelay.Link link = via == GatewayServer.Via.UNIX_SOCKET && r != null ? linkOf(r, c) : null;
        int uid = via == GatewayServer.Via.MTLS ? -1 : link != null ? link.connectorUid
                : ownerUid(c, via == GatewayServer.Via.UNIX_SOCKET);
        Conn conn = new Conn(uid);
        conn.link = link;
        if (link != null && link.shardThread != Thread.currentThread() && crossThreadLinks.getAndIncrement() == 0) {
            LOG.warn("gateway socket: a relayed connection is served on {}, its relay's shard runs on {}: its requests"
                    + " cross threads (said once)", Thread.currentThread().getName(), link.shardThread.getName());
        }
        conns.put(c, conn);
        if (via == GatewayServer.Via.UNIX_SOCKET && r != null && link == null) {
            // Only the relay connects here (the socket's directory is the daemon's user's alone).
            conn.refused = true;
            c.closeHandler(v -> conns.remove(c));
            LOG.warn("gateway: a connection to the relay's internal socket did not come from the relay: closed");
            c.close();
            return conn;
        }
        // The uid's own bound first: a connection refused by it is never counted in the total, so
        // one uid's flood, closed as fast as it comes, cannot crowd out the others.
        long own = adjust(connectionsByUid, uid, +1);
        int total = openConnections.incrementAndGet();
        boolean overUid = uid != -1 && own > limits.maxConnectionsPerUid();
        boolean overTotal = !overUid && total > limits.maxConnections();
        if (overUid || overTotal) {
            adjust(connectionsByUid, uid, -1);
            openConnections.decrementAndGet();
            conn.refused = true;
            c.closeHandler(v -> conns.remove(c));
            limitReached(overTotal ? "gateway: " + total + " connections, over gateway.maxConnections ("
                    + limits.maxConnections() + "): new ones are closed" : "gateway: uid " + uid + " holds " + own
                    + " connections, over gateway.maxConnectionsPerUid (" + limits.maxConnectionsPerUid()
                    + "): its new ones are closed");
            metrics.gatewayRequest("", "", Outcome.CONNECTION_LIMIT);
            c.close();
            return conn;
        }
        c.closeHandler(v -> {
            if (conns.remove(c) != null) {
                openConnections.decrementAndGet();
                adjust(connectionsByUid, uid, -1);
            }
            if (conn.idleTimer >= 0) {
                vertx.cancelTimer(conn.idleTimer);
            }
        });
        loopsServing.add(Thread.currentThread().getName());
        armIdle(c, conn);
        return conn;
    }

    void limitReached(String what) {
        long now = System.nanoTime();
        long last = lastLimitLog.get();
        if (now - last > 10_000_000_000L && lastLimitLog.compareAndSet(last, now)) {
            LOG.warn("{} (said at most every 10 s)", what);
        }
    }

    private volatile WriterRelay relay;

    /** From now on, connections on the Unix socket come through {@code r}: their uid and writer are its links'. */
    void relayedBy(WriterRelay r) {
        this.relay = r;
    }

    /** The relay's link behind a connection on its internal socket (by the inode of the relay's end), or null. */
    private static WriterRelay.Link linkOf(WriterRelay r, HttpConnection c) {
        OptionalInt fd = ChannelFd.of(c);
        if (fd.isEmpty()) {
            return null;
        }
        java.util.OptionalLong peer = PeerLookup.unixPeerInode(fd.getAsInt());
        return peer.isPresent() ? r.linkOf(peer.getAsLong()) : null;
    }

    /** The uid that owns the client's socket: SO_PEERCRED, or the loopback TCP socket's owner; -2 when unknown. */
    private int ownerUid(HttpConnection c, boolean unix) {
        try {
            if (unix) {
                OptionalInt fd = ChannelFd.of(c);
                return fd.isPresent() ? PeerLookup.unixPeer(fd.getAsInt()).map(Caller::uid).orElse(-2) : -2;
            }
            SocketAddress remote = c.remoteAddress();
            SocketAddress local = c.localAddress();
            return peers.tcpOwner(new InetSocketAddress(InetAddress.getByName(remote.hostAddress()), remote.port()),
                    new InetSocketAddress(InetAddress.getByName(local.hostAddress()), local.port())).orElse(-2);
        } catch (IOException | RuntimeException e) {
            return -2;
        }
    }

    /** Closes {@code c} when no request starts within {@code gateway.idleTimeout}. */
    void armIdle(HttpConnection c, Conn conn) {
        if (conn.idleTimer >= 0) {
            vertx.cancelTimer(conn.idleTimer);
        }
        conn.idleTimer = vertx.setTimer(limits.idleTimeout().toMillis(), id -> {
            if (conn.inFlight == 0 && conn.idleTimer == id) {
                c.close();
            }
        });
    }

    /** Counts {@code n} more body bytes against the total and the caller's uid's share (a quarter); false if over. */
    boolean hold(Exchange x, long n) {
        long total = buffered.addAndGet(n);
        long own = adjust(bufferedByUid, x.conn.uid, n);
        x.held += n;
        boolean ok = total <= limits.maxBufferedBytes() && (x.conn.uid == -1 || own <= Math.max(Math.min(maxBodyBytes,
                limits.maxBufferedBytes()), limits.maxBufferedBytes() / 4));
        if (!ok) {
            limitReached("gateway: request bodies in memory reached gateway.maxBufferedBytes (" + limits.maxBufferedBytes()
                    + " bytes, a quarter per uid): requests over it are refused with 503");
        }
        return ok;
    }

    void release(Exchange x) {
        if (x.held > 0) {
            buffered.addAndGet(-x.held);
            adjust(bufferedByUid, x.conn.uid, -x.held);
            x.held = 0;
        }
        x.body = null;
    }

    /**
     * Adds {@code delta} to {@code uid}'s count in {@code counts} (connections, body bytes) inside the
     * map's own update, removing the entry at zero; the new count. Connections of one uid arrive on
     * several event loops: a count raised on a counter another loop's close just dropped would be lost.
     */
    private static long adjust(Map<Integer, java.util.concurrent.atomic.AtomicLong> counts, int uid, long delta) {
        long[] now = new long[1];
        counts.compute(uid, (u, n) -> {
            long v = (n == null ? 0 : n.get()) + delta;
            now[0] = v;
            if (v <= 0) {
                return null;
            }
            if (n == null) {
                return new java.util.concurrent.atomic.AtomicLong(v);
            }
            n.set(v);
            return n;
        });
        return now[0];
    }
}
