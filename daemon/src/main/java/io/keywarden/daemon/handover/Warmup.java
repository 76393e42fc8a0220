package io.keywarden.daemon.handover;

import io.keywarden.attestation.dev.JwtSigner;
import io.keywarden.policy.SpiffeId;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import java.time.Clock;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads and initialises the libraries a daemon's start needs (Vert.x and Netty with an HTTP
 * round trip on loopback, JSON, the signing code) before a successor asks for the handover: the
 * old daemon's requests wait in the kernel from the moment it pauses until the successor serves,
 * and without this most of that wait is class loading. Nothing here is kept.
 */
public final class Warmup {
    private static final Logger LOG = LoggerFactory.getLogger(Warmup.class);

    private Warmup() {
    }

    /** Encodes and decodes an empty inheritance: the codec's classes, loaded before they are on the clock. */
    public static void codec() {
        try {
            Inheritance empty = new Inheritance(0, "", java.nio.file.Path.of("/"), new io.keywarden.fuse.FuseSession.Handoff(
                    -1, 0, false, -1), new io.keywarden.delivery.KeyFs.State(0, java.util.Map.of(), 1, java.util.Map.of(), 1,
                    java.util.Map.of(), java.util.Map.of(), 1), List.of(), java.util.Map.of(), List.of());
            Inheritance.decode(empty.encode(), -1);
            new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(java.util.Map.of("ok", true));
        } catch (java.io.IOException e) {
            LOG.debug("codec warm-up: {}", e.toString());
        }
    }

    public static void libraries() {
        long t0 = System.nanoTime();
        Vertx v = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1).setWorkerPoolSize(1));
        try {
            HttpServer s = v.createHttpServer().requestHandler(r -> r.response().end("{}"))
                    .listen(0, "127.0.0.1").await(5, TimeUnit.SECONDS);
            v.createHttpClient().request(HttpMethod.GET, s.actualPort(), "127.0.0.1", "/")
                    .compose(r -> r.send()).compose(r -> r.body()).await(5, TimeUnit.SECONDS);
            s.close().await(5, TimeUnit.SECONDS);
            new com.fasterxml.jackson.databind.ObjectMapper().readTree("{\"warm\":[1,true,\"up\"]}");
            codec();
            new io.keywarden.daemon.ops.Metrics();
            new JwtSigner("http://127.0.0.1", List.of("warmup"), Clock.systemUTC()).sign(SpiffeId.parse("spiffe://warm.up/x"));
        } catch (Exception e) {
            LOG.debug("warm-up incomplete: {}", e.toString());
        } finally {
            try {
                v.close().await(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                LOG.debug("warm-up Vert.x did not close: {}", e.toString());
            }
        }
        LOG.info("libraries loaded in {} ms before asking for the handover", (System.nanoTime() - t0) / 1_000_000);
    }
}
