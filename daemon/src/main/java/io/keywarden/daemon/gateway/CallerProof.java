package io.keywarden.daemon.gateway;

import io.keywarden.attestation.Attestation;
import io.keywarden.delivery.AccessDecider;
import io.keywarden.delivery.Decision;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.net.SocketAddress;
import io.keywarden.daemon.net.ChannelFd;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Who is calling, proved at every request: the one process that holds the connection's client
 * socket now (a descriptor scan), pinned at the connection's first request by pid, start time and
 * executable; a connection held by several processes, by another one than its pin, or whose
 * process executed another program since, is refused as hostile and closed. An mTLS peer is its
 * SVID's SPIFFE ID. The access core decides either way.
 */
final class CallerProof {
    private static final Logger LOG = LoggerFactory.getLogger(CallerProof.class);

    private final AccessDecider decider;
    private final PeerLookup peers;
    private final Executor blocking;

    CallerProof(AccessDecider decider, PeerLookup peers, Executor blocking) {
        this.decider = decider;
        this.peers = peers;
        this.blocking = blocking;
    }

    private record HolderNow(PeerLookup.Holder holder, String refusal) {
    }

    /**
     * The access core's decision for the one process that holds the connection now, or for the mTLS
     * peer's SVID. A connection held by several processes, held by another process than the one it
     * was pinned to, or whose process executed another program since, is refused and closed.
     */
    CompletionStage<Decision> decide(Exchange x) {
        if (x.via == GatewayServer.Via.MTLS) {
            return CompletableFuture.completedFuture(decideRemote(x));
        }
        if (x.conn.link != null) {
            return decideRelayed(x, x.conn.link);
        }
        HttpConnection conn = x.req.connection();
        Conn pin = x.conn;
        boolean unix = x.via == GatewayServer.Via.UNIX_SOCKET;
        return CompletableFuture.supplyAsync(() -> inodeOf(conn, pin, unix), blocking)
                .thenCompose(inode -> inode < 0
                        ? CompletableFuture.completedFuture(new HolderNow(null, "the process behind this connection could"
                                + " not be found"))
                        : peers.holdersOfAsync(inode, blocking).thenApply(holders -> judge(holders, pin)))
                .thenCompose(h -> {
                    if (h.refusal() != null) {
                        return CompletableFuture.completedFuture(hostile(x, null, h.refusal()));
                    }
                    return decider.attest(h.holder().caller()).thenApply(a -> pinned(x, pin, h.holder(), a));
                });
    }

    /**
     * A request on the relayed Unix socket: every byte of it was written by the connection's pinned
     * process (the relay closes a connection on any other writer's first byte), so no pass over the
     * node's descriptors is needed. That process is attested while its pidfd says it lives (before and
     * after: its pid cannot have been given to another meanwhile), and must run the executable it ran
     * at the connection's first request.
     */
    private CompletionStage<Decision> decideRelayed(Exchange x, WriterRelay.Link link) {
        if (link.pid() <= 0 || !link.writerAlive()) {
            return CompletableFuture.completedFuture(hostile(x, null, "the process that wrote this request (pid "
                    + link.pid() + ") has exited"));
        }
        return decider.attest(new io.keywarden.delivery.Caller(link.pid(), link.uid(), link.gid())).thenApply(a -> {
            io.keywarden.attestation.ProcessInfo p = a.process();
            if (p != null && p.pid() == link.pid() && !link.writerAlive()) {
                return hostile(x, a, "the process that wrote this request (pid " + link.pid() + ") exited while it was"
                        + " attested");
            }
            return pinned(x, x.conn, new PeerLookup.Holder(link.pid(), p == null ? -1 : p.startTime(), link.uid(),
                    link.gid()), a);
        });
    }

    /** Blocking (/proc): the inode of the connection's client socket, found once and kept on the pin; -1 if unknown. */
    private long inodeOf(HttpConnection conn, Conn pin, boolean unix) {
        long inode = pin.inode;
        if (inode < 0) {
            java.util.OptionalLong found = clientInode(conn, unix);
            if (found.isEmpty()) {
                return -1;
            }
            inode = found.getAsLong();
            pin.inode = inode;
        }
        return inode;
    }

    /** The one process holding the connection's client socket now (from a pass over every descriptor), checked against the pin. */
    private HolderNow judge(List<PeerLookup.Holder> holders, Conn pin) {
        if (holders.isEmpty()) {
            return new HolderNow(null, "the process behind this connection could not be found (it exited, or passed"
                    + " the socket to a process this daemon cannot see)");
        }
        if (holders.size() > 1) {
            StringBuilder pids = new StringBuilder();
            for (PeerLookup.Holder h : holders) {
                pids.append(pids.length() == 0 ? "" : ", ").append(h.pid()).append(" (uid ").append(h.uid()).append(')');
            }
            return new HolderNow(null, "the connection is held by " + holders.size() + " processes (pids " + pids
                    + "): a gateway connection must be held by the one process that uses it");
        }
        PeerLookup.Holder now = holders.get(0);
        synchronized (pin) {
            if (pin.holder == null) {
                pin.holder = now;
            } else if (pin.holder.pid() != now.pid() || pin.holder.startTime() != now.startTime()) {
                return new HolderNow(null, "the connection changed hands: it was first used by pid " + pin.holder.pid()
                        + " and is held now by pid " + now.pid() + (pin.holder.pid() == now.pid() ? " (a reused pid)" : ""));
            }
        }
        return new HolderNow(now, null);
    }

    private java.util.OptionalLong clientInode(HttpConnection conn, boolean unix) {
        try {
            if (unix) {
                OptionalInt fd = ChannelFd.of(conn);
                return fd.isPresent() ? PeerLookup.unixPeerInode(fd.getAsInt()) : java.util.OptionalLong.empty();
            }
            SocketAddress remote = conn.remoteAddress();
            SocketAddress local = conn.localAddress();
            return peers.tcpInode(new InetSocketAddress(InetAddress.getByName(remote.hostAddress()), remote.port()),
                    new InetSocketAddress(InetAddress.getByName(local.hostAddress()), local.port()));
        } catch (IOException | RuntimeException e) {
            LOG.warn("gateway: cannot find the socket behind a connection: {}", e.toString());
            return java.util.OptionalLong.empty();
        }
    }

    /** The attested holder, checked against the pin (same start time; same executable as at its first request). */
    private Decision pinned(Exchange x, Conn pin, PeerLookup.Holder holder, Attestation a) {
        io.keywarden.attestation.ProcessInfo p = a.process();
        if (p == null || p.pid() != holder.pid() || p.startTime() != holder.startTime()) {
            return hostile(x, a, "the process holding the connection was replaced while it was attested");
        }
        if (p.exeFile().isEmpty()) {
            return hostile(x, a, "the executable of pid " + p.pid() + " cannot be identified");
        }
        synchronized (pin) {
            if (pin.exe == null) {
                pin.exe = p.exeFile().get();
            } else if (!pin.exe.equals(p.exeFile().get())) {
                return hostile(x, a, "pid " + p.pid() + " runs another executable than at its first request on this"
                        + " connection (" + p.exe().orElse("?") + ")");
            }
        }
        return decider.authorize(a, x.key, x.file());
    }

    /** A refusal recorded like any denial; the connection is closed once it is answered. */
    private Decision hostile(Exchange x, Attestation a, String reason) {
        x.closeAfter = true;
        io.keywarden.attestation.ProcessInfo p = a == null ? null : a.process();
        Decision d = decider.authorize(new Attestation.Unidentified(p, reason), x.key, x.file());
        return d instanceof Decision.NoSuchKey ? new Decision.Denied(a, Decision.DenyReason.UNIDENTIFIED, reason) : d;
    }

    /**
     * A remote caller: the TLS layer verified its chain to the bundle; its one {@code spiffe://} URI
     * SAN names the workload. No /proc check applies.
     */
    private Decision decideRemote(Exchange x) {
        try {
            var certs = x.req.connection().peerCertificates();
            if (certs != null && !certs.isEmpty() && certs.get(0) instanceof java.security.cert.X509Certificate leaf) {
                var id = io.keywarden.attestation.spire.X509SvidSource.spiffeIdOf(leaf);
                if (id.isPresent()) {
                    return decider.authorizeRemote(io.keywarden.policy.SpiffeId.parse(id.get()), x.key, x.file());
                }
            }
        } catch (javax.net.ssl.SSLPeerUnverifiedException | IllegalArgumentException e) {
            // refused below
        }
        return new Decision.Denied(null, Decision.DenyReason.UNIDENTIFIED, "the peer presented no X.509-SVID");
    }
}
