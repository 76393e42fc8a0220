package io.keywarden.daemon.ops;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * {@code ops.listen}: {@code /healthz}, {@code /readyz}, {@code /metrics}, and with the dev
 * identity provider {@code /.well-known/openid-configuration} and {@code /.well-known/jwks.json}.
 * The event loop only formats what other components computed; nothing here blocks.
 */
public final class OpsServer implements AutoCloseable {
    private final HttpServer server;

    private OpsServer(HttpServer server) {
        this.server = server;
    }

    /**
     * Serves on the daemon's Vert.x (shared with the admin API); closing stops this server only.
     * {@code documents}: further JSON documents by path (the dev identity provider's OpenID
     * configuration and JWKS, keywarden's own client JWKS), each computed when asked.
     */
    public static OpsServer start(Vertx vertx, String host, int port, Readiness readiness, Metrics metrics,
                                  java.util.Map<String, java.util.function.Supplier<String>> documents) throws IOException {
        Router router = Router.router(vertx);
        router.get("/healthz").handler(ctx -> ctx.response().putHeader("content-type", "text/plain").end("ok\n"));
        router.get("/readyz").handler(ctx -> {
            boolean ready = readiness.isReady();
            ctx.response().setStatusCode(ready ? 200 : 503).putHeader("content-type", "application/json")
                    .end(new JsonObject().put("ready", ready).put("reasons", new JsonArray(readiness.reasons()))
                            .put("degraded", new JsonArray(readiness.degradations())).encode());
        });
        router.get("/metrics").handler(ctx -> ctx.response()
                .putHeader("content-type", "text/plain; version=0.0.4; charset=utf-8").end(metrics.scrape()));
        documents.forEach((path, body) -> router.get(path).handler(ctx -> ctx.response()
                .putHeader("content-type", "application/json").end(body.get())));
        try {
            HttpServer server = vertx.createHttpServer().requestHandler(router).listen(port, host)
                    .await(10, TimeUnit.SECONDS);
            return new OpsServer(server);
        } catch (Exception e) {
            throw new IOException("cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    public int port() {
        return server.actualPort();
    }

    @Override
    public void close() {
        try {
            server.close().await(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            // shutting down anyway
        }
    }
}
