package io.keywarden.daemon.gateway;

import io.keywarden.daemon.gateway.GatewayServer.Via;
import io.keywarden.daemon.ops.GatewayMetrics;
import io.keywarden.daemon.ops.GatewayMetrics.Outcome;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.net.SocketAddress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway's listeners: loopback TCP, the Unix socket (relayed by {@link WriterRelay} where the
 * kernel names each message's writer, else served directly) and mTLS, each with one HTTP server per
 * event loop ({@code tuning.gatewayEventLoops}); every request goes to the gateway's one handler.
 * Closing stops them, the relay, and removes the sockets and the relay's directory.
 */
final class GatewayListeners {
    private static final Logger LOG = LoggerFactory.getLogger(GatewayListeners.class);

    private final Vertx vertx;
    private final GatewaySettings config;
    private final GatewaySettings.Limits limits;
    /** How many of Vert.x's event loops serve each listener ({@code tuning.gatewayEventLoops}). */
    private final int eventLoops;
    private final GatewayConnections connections;
    private final GatewayMetrics metrics;
    private final BiConsumer<HttpServerRequest, Via> handler;
    /** Every listener's servers, one per event loop (added from the loops as their instances start). */
    private final List<HttpServer> servers = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final List<String> deployments = new ArrayList<>();
    /** The Unix socket's relay and the directory of its internal sockets; null without one. */
    private WriterRelay relay;
    private Path relayDir;

    GatewayListeners(Vertx vertx, GatewaySettings config, int eventLoops, GatewayConnections connections,
                     GatewayMetrics metrics, BiConsumer<HttpServerRequest, Via> handler) {
        if (eventLoops < 1) {
            throw new IllegalArgumentException("eventLoops must be at least 1, not " + eventLoops);
        }
        this.vertx = vertx;
        this.config = config;
        this.limits = config.limits();
        this.eventLoops = eventLoops;
        this.connections = connections;
        this.metrics = metrics;
        this.handler = handler;
    }

    /** Opens the listeners the config names; {@code svids}: keywarden's own for mTLS (may be null without). */
    void open(io.keywarden.attestation.spire.X509SvidSource svids) throws IOException {
        if (config.listen().isPresent()) {
            var hp = config.listen().get();
            listen(SocketAddress.inetSocketAddress(hp.port(), hp.host()), Via.LOOPBACK_TCP, "gateway on " + hp, null);
        }
        if (config.socket().isPresent()) {
            Path sock = config.socket().get();
            String why = io.keywarden.daemon.net.ChannelFd.unsupported(vertx);
            if (why != null) {
                throw new IOException("the gateway socket " + sock + " cannot find its callers: " + why);
            }
            io.keywarden.linux.SafePaths.directory(sock.toAbsolutePath().getParent(),
                    io.keywarden.linux.SafePaths.SHARED, "the gateway socket " + sock);
            // Anyone may connect: who they are is decided per connection, as for an open(). The
            // mode is set before the socket is reachable at its name.
            if (config.socketRelay() && WriterRelay.supported()) {
                relayed(sock);
            } else {
                String proof = config.socketRelay() ? "this kernel does not say who wrote each message (SO_PASSPIDFD:"
                        + " Linux 6.5)" : "gateway.socketRelay is false";
                io.keywarden.linux.SafePaths.placeSocket(sock, PosixFilePermissions.fromString("rw-rw-rw-"),
                        "the gateway socket " + sock, at -> listen(SocketAddress.domainSocketAddress(at.toString()),
                                Via.UNIX_SOCKET, "gateway socket " + sock + " (" + proof + ": every request's caller is"
                                + " proved by a pass over the node's descriptors)", null));
            }
        }
        if (config.mtls().isPresent()) {
            var hp = config.mtls().get().listen();
            listen(SocketAddress.inetSocketAddress(hp.port(), hp.host()), Via.MTLS, "gateway mTLS on " + hp
                    + " (callers by X.509-SVID)", svids);
        }
    }

    /** Relay directories of a daemon that did not stop cleanly (the socket's directory is the daemon's own). */
    private static final String RELAY_DIR = ".kw-gateway-relay-";

    /**
     * The gateway socket at {@code sock}, relayed ({@link WriterRelay}): the HTTP server listens on a
     * socket in a directory only this daemon's user can enter, and the relay listens at {@code sock}.
     */
    private void relayed(Path sock) throws IOException {
        Path parent = sock.toAbsolutePath().normalize().getParent();
        try (var stale = Files.newDirectoryStream(parent, RELAY_DIR + "*")) {
            for (Path d : stale) {
                if (Files.isDirectory(d, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                    removeRelayDir(d);
                }
            }
        }
        relayDir = Files.createTempDirectory(parent, RELAY_DIR,
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        int[] shards = new int[2];
        // Bound under a temporary name: the socket is reachable at its own once every shard serves.
        io.keywarden.linux.SafePaths.placeSocket(sock, PosixFilePermissions.fromString("rw-rw-rw-"),
                "the gateway socket " + sock, at -> {
                    // Counted like the holder pass's refusals of a hostile connection.
                    relay = WriterRelay.listen(at, () -> metrics.gatewayRequest("", "", Outcome.NOT_PERMITTED));
                    connections.relayedBy(relay);
                    serveRelayed(shards);
                });
        LOG.info("gateway socket {} (each request's writer named by the kernel){}", sock, shards[0] + shards[1] > 1
                ? " on " + (shards[0] + shards[1]) + " event loops" : "");
        if (shards[1] > 0) {
            LOG.warn("gateway socket: {} of its relay's shards run on threads of their own (the event loop cannot take"
                    + " an epoll descriptor): each request crosses threads there", shards[1]);
        }
    }

    /**
     * One HTTP server per event loop, each on an internal socket of its own, with the relay's shard
     * for it on the same loop: a connection the shard takes is relayed and served on one thread.
     * {@code shards}: counts shards on event loops [0] and on threads of their own [1].
     */
    private void serveRelayed(int[] shards) throws IOException {
        HttpServerOptions o = serverOptions(Via.UNIX_SOCKET, null);
        java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
        try {
            deployments.add(vertx.deployVerticle(() -> ctx -> {
                Path internal = relayDir.resolve("http-" + next.getAndIncrement() + ".sock");
                HttpServer s = vertx.createHttpServer(o).connectionHandler(c -> connections.opened(c, Via.UNIX_SOCKET))
                        .requestHandler(req -> handler.accept(req, Via.UNIX_SOCKET));
                servers.add(s);
                return s.listen(SocketAddress.domainSocketAddress(internal.toString())).compose(bound -> {
                    try {
                        io.netty.channel.EventLoop loop = ((io.vertx.core.internal.ContextInternal) ctx).nettyEventLoop();
                        boolean onLoop = loop instanceof io.netty.channel.IoEventLoop io && relay.onLoop(io, internal) != null;
                        if (!onLoop) {
                            relay.onThread(internal);
                        }
                        synchronized (shards) {
                            shards[onLoop ? 0 : 1]++;
                        }
                        return io.vertx.core.Future.succeededFuture(bound);
                    } catch (IOException | RuntimeException e) {
                        return io.vertx.core.Future.failedFuture(e);
                    }
                });
            }, new io.vertx.core.DeploymentOptions().setInstances(eventLoops)).await(10, TimeUnit.SECONDS));
        } catch (Exception e) {
            throw new IOException("cannot serve the gateway socket's relay: " + e.getMessage(), e);
        }
    }

    private void listen(SocketAddress at, Via via, String what, io.keywarden.attestation.spire.X509SvidSource svids)
            throws IOException {
        HttpServerOptions o = serverOptions(via, svids);
        // One server per event loop on the same address: Vert.x shares the listening socket and hands
        // each new connection to the next loop, where all of that connection's requests then run.
        // A deployment's instances each run on their own event-loop context. Vert.x shares a given
        // port or socket path; port 0 (tests) gets one server, as Vert.x would give each its own port.
        int loops = at.isInetSocket() && at.port() == 0 ? 1 : eventLoops;
        try {
            deployments.add(vertx.deployVerticle(() -> ctx -> {
                HttpServer s = vertx.createHttpServer(o).connectionHandler(c -> connections.opened(c, via))
                        .requestHandler(req -> handler.accept(req, via));
                servers.add(s);
                return s.listen(at);
            }, new io.vertx.core.DeploymentOptions().setInstances(loops)).await(10, TimeUnit.SECONDS));
        } catch (Exception e) {
            throw new IOException("cannot listen: " + what + ": " + e.getMessage(), e);
        }
        LOG.info("{}{}", what, loops > 1 ? " on " + loops + " event loops" : "");
    }

    private HttpServerOptions serverOptions(Via via, io.keywarden.attestation.spire.X509SvidSource svids) {
        HttpServerOptions o = new HttpServerOptions().setMaxHeaderSize(64 * 1024).setMaxInitialLineLength(16 * 1024)
                .setIdleTimeout((int) Math.min(Integer.MAX_VALUE, config.timeout().toSeconds()))
                .setDecompressionSupported(false).setCompressionSupported(false)
                // HTTP/1.1 toward agents: with h2c on, Vert.x configures a connection (and calls the
                // connection handler that bounds it) only once its first bytes arrive, so connections
                // that never send any could not be counted. Upstreams are still spoken to in HTTP/2.
                .setHttp2ClearTextEnabled(false)
                .setInitialSettings(new io.vertx.core.http.Http2Settings()
                        .setMaxConcurrentStreams(limits.maxStreamsPerConnection()).setMaxHeaderListSize(64 * 1024));
        if (via == Via.MTLS) {
            // Our SVID as the server certificate; the caller must present an SVID of the bundle (both rotate).
            o.setSsl(true).setClientAuth(io.vertx.core.http.ClientAuth.REQUIRED)
                    .setKeyCertOptions(io.vertx.core.net.KeyCertOptions.wrap(svids.keyManager()))
                    .setTrustOptions(io.vertx.core.net.TrustOptions.wrap(svids.trustManager()));
        }
        return o;
    }

    /** The actual port of the TCP listener (tests listen on port 0). */
    OptionalInt port() {
        for (HttpServer s : servers) {
            if (s.actualPort() > 0) {
                return OptionalInt.of(s.actualPort());
            }
        }
        return OptionalInt.empty();
    }

    /** A relay directory and the internal sockets in it. */
    private static void removeRelayDir(Path d) throws IOException {
        try (var socks = Files.newDirectoryStream(d, "http*.sock")) {
            for (Path f : socks) {
                Files.deleteIfExists(f);
            }
        }
        Files.deleteIfExists(d);
    }

    /** Stops every listener and the relay; removes the sockets and the relay's directory. */
    void close() {
        for (HttpServer s : servers) {
            try {
                s.close().await(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                LOG.debug("gateway listener did not close cleanly: {}", e.toString());
            }
        }
        if (relay != null) {
            relay.close();
        }
        for (String id : deployments) {
            try {
                vertx.undeploy(id).await(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                LOG.debug("gateway listener's event loops did not stop cleanly: {}", e.toString());
            }
        }
        if (relayDir != null) {
            try {
                removeRelayDir(relayDir);
            } catch (IOException e) {
                LOG.debug("cannot remove {}: {}", relayDir, e.toString());
            }
        }
        config.socket().ifPresent(s -> {
            try {
                Files.deleteIfExists(s);
            } catch (IOException e) {
                LOG.debug("cannot remove {}: {}", s, e.toString());
            }
        });
    }
}
