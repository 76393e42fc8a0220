import io.vertx.core.DeploymentOptions;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SocketAddress;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The floor of an HTTP hop on keywarden's own stack, for GatewayBench: Vert.x's HTTP server and
 * client as the gateway uses them (the same jar, so the same Vert.x and Netty with the epoll
 * transport; the daemon's JVM flags), one server per event loop on a Unix socket, a client per loop,
 * every request relayed to the upstream with its headers and body streamed both ways — and nothing
 * else: no caller, no decision, no guard, no ledger, no credential. Run as
 * {@code java -cp keywarden.jar NoopProxy.java SOCKET UPSTREAM_PORT EVENT_LOOPS [RELAY_SOCKET]}; prints
 * "ready". With RELAY_SOCKET, keywarden's own {@code WriterRelay} (each chunk's writer named by the
 * kernel, as on the gateway's socket) listens there, a shard on each event loop relaying to that
 * loop's own server (SOCKET-N), as the gateway runs it: the relay's cost alone.
 */
public class NoopProxy {
    static final Set<String> HOP = Set.of("connection", "keep-alive", "proxy-connection", "te", "trailer",
            "transfer-encoding", "upgrade", "host");

    public static void main(String[] a) throws Exception {
        String socket = a[0];
        int upstream = Integer.parseInt(a[1]);
        int loops = Integer.parseInt(a[2]);
        Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(loops).setPreferNativeTransport(true));
        if (!vertx.isNativeTransportEnabled()) {
            throw new IllegalStateException("no native transport: a Unix socket needs epoll");
        }
        Object relay = null;
        java.lang.reflect.Method onLoop = null;
        if (a.length > 3) {
            // keywarden's relay, package-private in the daemon: reached by reflection (a bench tool on
            // the class path). Each loop's server then listens on a socket of its own (SOCKET-N) with
            // the relay's shard for it on the same loop, as the gateway does.
            Class<?> wr = Class.forName("io.keywarden.daemon.gateway.WriterRelay");
            var listen = wr.getDeclaredMethod("listen", java.nio.file.Path.class, Runnable.class);
            listen.setAccessible(true);
            try {
                relay = listen.invoke(null, java.nio.file.Path.of(a[3]), (Runnable) () -> { });
                onLoop = wr.getDeclaredMethod("onLoop", io.netty.channel.IoEventLoop.class, java.nio.file.Path.class);
                onLoop.setAccessible(true);
            } catch (java.lang.reflect.InvocationTargetException e) {
                // No relay on this kernel (SO_PASSPIDFD: Linux 6.5): the bench sees no socket and skips it.
                relay = null;
            }
        }
        Object theRelay = relay;
        java.lang.reflect.Method shardOnLoop = onLoop;
        java.util.concurrent.atomic.AtomicInteger next = new java.util.concurrent.atomic.AtomicInteger();
        // The plain proxy: one shared socket, one server per loop.
        vertx.deployVerticle(() -> ctx -> server(vertx, upstream).listen(SocketAddress.domainSocketAddress(socket)),
                new DeploymentOptions().setInstances(loops)).await();
        if (theRelay != null) {
            vertx.deployVerticle(() -> ctx -> {
                String own = socket + "-" + next.getAndIncrement();
                return server(vertx, upstream).listen(SocketAddress.domainSocketAddress(own)).compose(bound -> {
                    try {
                        Object loop = ((io.vertx.core.internal.ContextInternal) ctx).nettyEventLoop();
                        if (shardOnLoop.invoke(theRelay, loop, java.nio.file.Path.of(own)) == null) {
                            return Future.failedFuture("the event loop cannot take the relay's shard");
                        }
                        return Future.succeededFuture(bound);
                    } catch (ReflectiveOperationException e) {
                        return Future.failedFuture(e);
                    }
                });
            }, new DeploymentOptions().setInstances(loops)).await();
        }
        System.out.println("ready");
        System.out.flush();
        Thread.currentThread().join();
    }

    /** Vert.x's HTTP server relaying every request to the upstream, with a client of its own (one per loop). */
    static io.vertx.core.http.HttpServer server(Vertx vertx, int upstream) {
        HttpClient client = vertx.httpClientBuilder()
                .with(new HttpClientOptions().setKeepAlive(true).setProtocolVersion(HttpVersion.HTTP_1_1)
                        .setDecompressionSupported(false))
                .with(new PoolOptions().setHttp1MaxSize(64)).build();
        return vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(false)
                        .setDecompressionSupported(false).setCompressionSupported(false))
                .requestHandler(req -> {
                    req.pause();
                    RequestOptions o = new RequestOptions().setMethod(req.method()).setHost("127.0.0.1")
                            .setPort(upstream).setURI(req.uri());
                    client.request(o).compose(creq -> {
                        for (Map.Entry<String, String> h : req.headers()) {
                            if (!HOP.contains(h.getKey().toLowerCase(Locale.ROOT))) {
                                creq.headers().add(h.getKey(), h.getValue());
                            }
                        }
                        return creq.send(req);
                    }).onComplete(ar -> {
                        if (ar.failed()) {
                            req.response().setStatusCode(502).end();
                            return;
                        }
                        var cres = ar.result();
                        var resp = req.response().setStatusCode(cres.statusCode());
                        for (Map.Entry<String, String> h : cres.headers()) {
                            if (!HOP.contains(h.getKey().toLowerCase(Locale.ROOT))) {
                                resp.headers().add(h.getKey(), h.getValue());
                            }
                        }
                        if (resp.headers().get("content-length") == null) {
                            resp.setChunked(true);
                        }
                        cres.pipeTo(resp);
                    });
                });
    }
}
