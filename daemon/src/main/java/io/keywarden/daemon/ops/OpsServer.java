package io.keywarden.daemon.ops;

import io.keywarden.attestation.dev.JwtSigner;
import io.keywarden.daemon.config.HostPort;
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

    /** Serves on the daemon's Vert.x (shared with the admin API); closing stops this server only. */
    public static OpsServer start(Vertx vertx, HostPort listen, Readiness readiness, Metrics metrics, JwtSigner devSigner,
                                  java.util.function.Supplier<String> clientJwks) throws IOException {
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
        if (clientJwks != null) {
            // keywarden's own client key (private_key_jwt, e.g. Okta), by kid.
            router.get(io.keywarden.daemon.issuer.federation.NodeKey.PATH).handler(ctx -> ctx.response()
                    .putHeader("content-type", "application/json").end(clientJwks.get()));
        }
        if (devSigner != null) {
            router.get("/.well-known/openid-configuration").handler(ctx -> ctx.response()
                    .putHeader("content-type", "application/json").end(devSigner.openidConfigurationJson()));
            router.get("/.well-known/jwks.json").handler(ctx -> ctx.response()
                    .putHeader("content-type", "application/json").end(devSigner.jwksJson()));
        }
        try {
            HttpServer server = vertx.createHttpServer().requestHandler(router).listen(listen.port(), listen.host())
                    .await(10, TimeUnit.SECONDS);
            return new OpsServer(server);
        } catch (Exception e) {
            throw new IOException("cannot listen on " + listen + ": " + e.getMessage(), e);
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
