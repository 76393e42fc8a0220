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
 * {@code java -cp keywarden.jar NoopProxy.java SOCKET UPSTREAM_PORT EVENT_LOOPS [RELAY_SOCKET [NETTY_SOCKET]]}; prints
 * "ready". With RELAY_SOCKET, keywarden's own {@code WriterRelay} (each chunk's writer named by the
 * kernel, as on the gateway's socket) listens there, a shard on each event loop relaying to that
 * loop's own server (SOCKET-N), as the gateway runs it: the relay's cost alone. With NETTY_SOCKET
 * (a fifth argument), a proxy on Netty alone listens there too ({@link RawNetty}): the same event
 * loops and JVM, Netty's HTTP codecs without Vert.x's server and client — what Vert.x itself costs.
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
        if (a.length > 4) {
            RawNetty.listen(((io.vertx.core.internal.VertxInternal) vertx).nettyEventLoopGroup(), a[4], upstream);
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

    /**
     * An HTTP/1.1 reverse proxy on Netty's own codecs, nothing else: each client connection gets one
     * upstream connection on the same event loop (opened when the client connects; the client is not
     * read until it is up), every request and response passed through as Netty decodes it and flushed at
     * the end of each read (a chunked answer re-chunked as it comes), hop-by-hop headers dropped.
     */
    static final class RawNetty {
        static void listen(io.netty.channel.EventLoopGroup loops, String path, int upstream) throws Exception {
            java.nio.file.Files.deleteIfExists(java.nio.file.Path.of(path));
            new io.netty.bootstrap.ServerBootstrap().group(loops)
                    .channel(io.netty.channel.epoll.EpollServerDomainSocketChannel.class)
                    .childOption(io.netty.channel.ChannelOption.AUTO_READ, false)
                    .childHandler(new io.netty.channel.ChannelInitializer<io.netty.channel.Channel>() {
                        @Override
                        protected void initChannel(io.netty.channel.Channel ch) {
                            ch.pipeline().addLast(new io.netty.handler.codec.http.HttpServerCodec(), new Front(upstream));
                        }
                    }).bind(new io.netty.channel.unix.DomainSocketAddress(path)).sync();
        }

        static void strip(io.netty.handler.codec.http.HttpHeaders h) {
            for (String n : new String[] {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}) {
                h.remove(n);
            }
        }

        /**
         * One side of a pair: what it decodes goes to the other side (a message's headers stripped
         * first), flushed at the end of each read; either side closing closes the other.
         */
        abstract static class Side extends io.netty.channel.ChannelInboundHandlerAdapter {
            io.netty.channel.Channel other;

            /** The message's head before it is passed on. */
            abstract void head(io.netty.handler.codec.http.HttpMessage m);

            @Override
            public void channelRead(io.netty.channel.ChannelHandlerContext ctx, Object msg) {
                if (msg instanceof io.netty.handler.codec.http.HttpMessage m) {
                    head(m);
                }
                other.write(msg);
            }

            @Override
            public void channelReadComplete(io.netty.channel.ChannelHandlerContext ctx) {
                other.flush();
            }

            @Override
            public void channelInactive(io.netty.channel.ChannelHandlerContext ctx) {
                if (other != null) {
                    other.close();
                }
            }

            @Override
            public void exceptionCaught(io.netty.channel.ChannelHandlerContext ctx, Throwable e) {
                ctx.close();
            }
        }

        /** The client's side: its requests go to its own upstream connection, opened when it connects. */
        static final class Front extends Side {
            final int upstream;

            Front(int upstream) {
                this.upstream = upstream;
            }

            @Override
            void head(io.netty.handler.codec.http.HttpMessage m) {
                strip(m.headers());
                m.headers().set("host", "127.0.0.1:" + upstream);
            }

            @Override
            public void channelActive(io.netty.channel.ChannelHandlerContext ctx) {
                io.netty.channel.Channel front = ctx.channel();
                new io.netty.bootstrap.Bootstrap().group(front.eventLoop())
                        .channel(io.netty.channel.epoll.EpollSocketChannel.class)
                        .option(io.netty.channel.ChannelOption.TCP_NODELAY, true)
                        .handler(new io.netty.channel.ChannelInitializer<io.netty.channel.Channel>() {
                            @Override
                            protected void initChannel(io.netty.channel.Channel ch) {
                                Back back = new Back();
                                back.other = front;
                                ch.pipeline().addLast(new io.netty.handler.codec.http.HttpClientCodec(), back);
                            }
                        }).connect("127.0.0.1", upstream).addListener((io.netty.channel.ChannelFutureListener) f -> {
                            if (!f.isSuccess()) {
                                front.close();
                                return;
                            }
                            other = f.channel();
                            front.config().setAutoRead(true);
                            front.read();
                        });
            }
        }

        /** The upstream's side: its answers go back to the client as they are decoded. */
        static final class Back extends Side {
            @Override
            void head(io.netty.handler.codec.http.HttpMessage m) {
                strip(m.headers());
            }
        }
    }
}
