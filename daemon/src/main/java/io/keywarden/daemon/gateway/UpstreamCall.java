package io.keywarden.daemon.gateway;

import io.keywarden.daemon.ops.GatewayMetrics;
import io.keywarden.daemon.ops.GatewayMetrics.Outcome;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.policy.Workload;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.PemTrustOptions;
import java.net.URI;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A granted request on its way to the provider and back: the upstream request with the issued
 * key injected (the caller's own credentials and hop-by-hop headers stripped), the answer relayed
 * with the key redacted from anything the upstream echoes, the usage read from it (streams
 * included) and settled against the reservation, or charged as {@link #settleUnmetered} says when
 * it cannot be read. One client (one connection pool) per key and scheme: a stuck upstream
 * exchange stalls only its own key.
 */
final class UpstreamCall {
    private static final Logger LOG = LoggerFactory.getLogger(UpstreamCall.class);
    /** Never forwarded upstream: hop-by-hop headers, and every header that may carry the caller's credential. */
    private static final Set<String> STRIP_REQUEST = caseless("authorization", "x-api-key", "api-key", "proxy-authorization",
            "host", "content-length", "connection", "keep-alive", "proxy-connection", "te", "trailer",
            "transfer-encoding", "upgrade", "accept-encoding", "cookie");
    private static final Set<String> STRIP_RESPONSE = caseless("connection", "keep-alive", "proxy-connection", "te",
            "trailer", "transfer-encoding", "upgrade");

    /** Header names compared without case, and without a lower-cased copy of each name per request. */
    private static Set<String> caseless(String... names) {
        java.util.TreeSet<String> s = new java.util.TreeSet<>(String.CASE_INSENSITIVE_ORDER);
        s.addAll(java.util.List.of(names));
        return java.util.Collections.unmodifiableSortedSet(s);
    }

    /** How a refusal is answered (the gateway's one error mapping). */
    interface Refusal {
        void refuse(Exchange x, int status, Outcome code, String message);
    }

    private final Vertx vertx;
    private final GatewaySettings config;
    private final io.keywarden.daemon.guard.TokenBudgets budgets;
    private final io.keywarden.daemon.guard.GatewayTally tally;
    private final GatewayMetrics metrics;
    private final Refusal refuse;
    /**
     * A client per upstream, scheme and event loop. Vert.x's pool hands a request the connection used
     * last, whatever loop it runs on, and a connection of another loop costs two thread hand-offs a
     * request; a client per loop makes its connections on that loop (the pool's default).
     */
    private record ClientKey(String key, boolean https, Thread loop) {
        @Override
        public boolean equals(Object o) {
            // Written out: a record's own equals and hashCode go through method handles, which the
            // daemon's C1-only JIT does not inline (3% of the gateway's event loop by perf, as map keys).
            return o instanceof ClientKey k && https == k.https && loop == k.loop && key.equals(k.key);
        }

        @Override
        public int hashCode() {
            return (31 * key.hashCode() + (https ? 1 : 0)) * 31 + System.identityHashCode(loop);
        }
    }

    private final Map<ClientKey, HttpClient> clients = new ConcurrentHashMap<>();

    UpstreamCall(Vertx vertx, GatewaySettings config, io.keywarden.daemon.guard.TokenBudgets budgets,
                 io.keywarden.daemon.guard.GatewayTally tally, GatewayMetrics metrics, Refusal refuse) {
        this.vertx = vertx;
        this.config = config;
        this.budgets = budgets;
        this.tally = tally;
        this.metrics = metrics;
        this.refuse = refuse;
    }

    /** The client for {@code key}'s upstream over {@code https} or plain HTTP on this event loop, made on first use. */
    private HttpClient clientFor(String key, boolean https) {
        ClientKey ck = new ClientKey(key, https, Thread.currentThread());
        HttpClient c = clients.get(ck);
        return c != null ? c : clients.computeIfAbsent(ck, k -> {
            int idle = (int) Math.min(Integer.MAX_VALUE, config.timeout().toSeconds());
            PoolOptions pool = new PoolOptions().setHttp1MaxSize(64).setHttp2MaxSize(4).setMaxWaitQueueSize(1024);
            HttpClientOptions o = new HttpClientOptions().setKeepAlive(true).setIdleTimeout(idle).setConnectTimeout(10_000)
                    .setDecompressionSupported(false);
            if (https) {
                o.setSsl(true).setUseAlpn(true).setProtocolVersion(HttpVersion.HTTP_2).setVerifyHost(true);
                config.caFile().ifPresent(ca -> o.setTrustOptions(new PemTrustOptions().addCertPath(ca.toString())));
            } else {
                o.setProtocolVersion(HttpVersion.HTTP_1_1);
            }
            return vertx.httpClientBuilder().with(o).with(pool).build();
        });
    }

    /**
     * An upstream's base URL taken apart once: Vert.x's {@code setAbsoluteURI} parses a
     * {@code java.net.URL} and the base path was trimmed by a regular expression at every request
     * (3% of the gateway's event loop by perf). {@code host} is null where {@link URI} has no
     * server-based authority (a host name with {@code _}): such a base goes through the URL parser.
     */
    private record Target(String scheme, String host, int port, boolean ssl, String basePath, String authority) {
        static Target of(URI base) {
            String path = base.getRawPath() == null ? "" : base.getRawPath();
            int end = path.length();
            while (end > 0 && path.charAt(end - 1) == '/') {
                end--;
            }
            boolean ssl = "https".equalsIgnoreCase(base.getScheme());
            int port = base.getPort() >= 0 ? base.getPort() : ssl ? 443 : 80;
            return new Target(base.getScheme(), base.getHost(), port, ssl, path.substring(0, end), base.getRawAuthority());
        }
    }

    private final Map<URI, Target> targets = new ConcurrentHashMap<>();

    void forward(Exchange x, IssuedKey issued) {
        x.leaseId = issued.leaseId();
        URI base = x.upstream.url();
        Target t = targets.get(base);
        if (t == null) {
            t = targets.computeIfAbsent(base, Target::of);
        }
        String uri = t.basePath() + "/" + x.rest + (x.req.query() == null ? "" : "?" + x.req.query());
        RequestOptions o;
        try {
            o = new RequestOptions().setMethod(x.req.method()).setIdleTimeout(config.timeout().toMillis())
                    .setConnectTimeout(10_000);
            if (t.host() != null && ("http".equalsIgnoreCase(t.scheme()) || t.ssl())) {
                o.setHost(t.host()).setPort(t.port()).setSsl(t.ssl()).setURI(uri);
            } else {
                o.setAbsoluteURI(t.scheme() + "://" + t.authority() + uri);
            }
        } catch (RuntimeException e) {
            refuse.refuse(x, 400, Outcome.BAD_REQUEST, "the request cannot be formed for the upstream");
            return;
        }
        MultiMap h = o.getHeaders() == null ? MultiMap.caseInsensitiveMultiMap() : o.getHeaders();
        for (Map.Entry<String, String> e : x.req.headers()) {
            if (!STRIP_REQUEST.contains(e.getKey()) && !e.getKey().startsWith(":")) {
                h.add(e.getKey(), e.getValue());
            }
        }
        // The lease's one header text for every request: no copy of the key per request. It is put
        // on the client request itself (options' headers are copied into it as strings).
        io.keywarden.delivery.KeyText cred = issued.headerText(x.upstream.auth() == GatewaySettings.UpstreamAuth.BEARER
                ? "Bearer " : "");
        String credHeader = switch (x.upstream.auth()) {
            case BEARER -> "authorization";
            case X_API_KEY -> "x-api-key";
            case API_KEY -> "api-key";
        };
        x.redactor = new KeyRedactor(cred);
        for (io.keywarden.delivery.Header extra : issued.headers()) {
            String theirs = h.get(extra.name());
            h.set(extra.name(), theirs == null || theirs.contains(extra.value()) ? extra.value() : theirs + "," + extra.value());
        }
        h.set("accept-encoding", "identity");
        o.setHeaders(h);
        HttpClient client = clientFor(x.key, t.ssl());
        Buffer body = x.body == null ? Buffer.buffer() : x.body;
        x.body = null;
        x.sent = true;
        client.request(o).compose(creq -> {
            if (x.finished) {
                creq.reset();
                return io.vertx.core.Future.failedFuture("the agent hung up");
            }
            x.upstreamRequest = creq;
            // Netty's AsciiString over the lease's own bytes: Vert.x's HTTP/1 client makes a string of
            // each header value, which AsciiString keeps: one per lease, not one per request.
            creq.putHeader(credHeader, cred.view(b -> new io.netty.util.AsciiString(b, false)));
            return creq.send(body);
        }).onComplete(ar -> {
            if (ar.failed()) {
                if (!x.finished) {
                    LOG.warn("gateway: upstream {} for key {} failed: {}", base.getHost(), x.key,
                            ar.cause().getClass().getSimpleName());
                }
                settleUnmetered(x, 502, 0, false);
                refuse.refuse(x, 502, Outcome.UPSTREAM_UNREACHABLE, "the upstream for key " + x.key + " did not answer: "
                        + ar.cause().getClass().getSimpleName());
                return;
            }
            relay(x, ar.result());
        });
    }

    private void relay(Exchange x, HttpClientResponse in) {
        HttpServerResponse out = x.req.response();
        if (out.ended() || out.closed()) {
            in.request().reset();
            return;
        }
        out.setStatusCode(in.statusCode());
        if (in.statusMessage() != null) {
            out.setStatusMessage(x.redactor.redact(in.statusMessage()));
        }
        for (Map.Entry<String, String> e : in.headers()) {
            if (!STRIP_RESPONSE.contains(e.getKey())) {
                out.headers().add(e.getKey(), x.redactor.redact(e.getValue()));
            }
        }
        UsageSensor sensor = new UsageSensor(in.getHeader("content-type"));
        UsageChunkFilter filter = x.dropUsageChunk && sensor.isStream() ? new UsageChunkFilter() : null;
        if (in.getHeader("content-length") == null || filter != null) {
            out.headers().remove("content-length");
            out.setChunked(true);
        }
        long[] relayed = {0};
        boolean[] done = {false};
        in.handler(chunk -> {
            byte[] bytes = chunk.getBytes();
            sensor.feed(bytes);
            relayed[0] += bytes.length;
            if (filter != null) {
                bytes = filter.feed(bytes);
            }
            bytes = x.redactor.feed(bytes);
            if (bytes.length > 0 && !out.closed()) {
                out.write(Buffer.buffer(bytes));
            }
            if (out.writeQueueFull()) {
                in.pause();
                out.drainHandler(v -> in.resume());
            }
        });
        in.endHandler(v -> {
            if (done[0]) {
                return;
            }
            done[0] = true;
            byte[] rest = filter == null ? new byte[0] : filter.end();
            rest = x.redactor.feed(rest);
            byte[] tail = x.redactor.end();
            // Settled before the answer ends: ending it finishes the exchange.
            account(x, in.statusCode(), sensor, relayed[0], true);
            if (!out.closed()) {
                if (rest.length > 0) {
                    out.write(Buffer.buffer(rest));
                }
                out.end(Buffer.buffer(tail));
            }
        });
        in.exceptionHandler(e -> {
            if (!done[0]) {
                done[0] = true;
                account(x, in.statusCode(), sensor, relayed[0], false);
                x.req.connection().close();
            }
        });
    }

    /**
     * Usage reaches the guard and the meters; nothing of the content does. The reservation settles to
     * the metered usage; with none (a stream cut short, an upstream error mid-answer, an API that does
     * not report it) to what {@link #settleUnmetered} charges.
     */
    private void account(Exchange x, int status, UsageSensor sensor, long relayed, boolean complete) {
        sensor.end();
        Workload w = x.who.workload();
        String model = sensor.model() != null ? sensor.model() : x.model;
        if (sensor.found()) {
            tally.add(x.leaseId, java.time.Instant.now(), sensor.inputTokens(), sensor.outputTokens(), 1);
            budgets.settle(w, x.reservation, model, sensor.inputTokens(), sensor.outputTokens(), "gateway");
            metrics.tokens(w.name(), x.key, model, sensor.inputTokens(), sensor.outputTokens());
        } else {
            settleUnmetered(x, status, relayed, complete);
        }
        x.reservation = null;
        metrics.gatewayRequest(w.name(), x.key, Outcome.relayed(status));
    }

    /**
     * A request whose usage could not be read: a complete error answer (4xx/5xx, not billed by
     * providers) or a request the upstream never received is charged nothing; a complete answer
     * without usage is charged the smaller of its reservation and its body plus the bytes relayed
     * (each an upper bound of its tokens); an answer cut short is charged its whole reservation (the
     * upstream may have generated more than reached us), or that upper bound when nothing was reserved.
     */
    private void settleUnmetered(Exchange x, int status, long relayed, boolean complete) {
        if (x.who == null) {
            return;
        }
        long bound = x.bodyBytes + relayed;
        long reserved = x.reservation == null ? bound : x.reservation.tokens();
        long charge;
        if (status >= 400 && complete || status == 502 && relayed == 0 && !complete && x.upstreamRequest == null) {
            charge = 0;
        } else if (complete) {
            charge = Math.min(reserved, bound);
        } else {
            charge = reserved;
        }
        long in = Math.min(charge, x.bodyBytes);
        tally.add(x.leaseId, java.time.Instant.now(), in, charge - in, 1);
        budgets.settle(x.who.workload(), x.reservation, x.model, in, charge - in, "gateway");
        x.reservation = null;
    }

    void close() {
        try {
            for (HttpClient c : clients.values()) {
                c.close().await(5, TimeUnit.SECONDS);
            }
        } catch (Exception e) {
            LOG.debug("gateway clients did not close cleanly: {}", e.toString());
        }
    }
}
