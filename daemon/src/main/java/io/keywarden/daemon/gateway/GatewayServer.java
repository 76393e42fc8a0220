package io.keywarden.daemon.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.keywarden.attestation.Attestation;
import io.keywarden.daemon.config.Config;
import io.keywarden.daemon.guard.Admission;
import io.keywarden.daemon.guard.GuardEngine;
import io.keywarden.daemon.hook.PolicyHook;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.delivery.AccessDecider;
import io.keywarden.delivery.Caller;
import io.keywarden.delivery.Decision;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import io.vertx.core.Context;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.PemTrustOptions;
import io.vertx.core.net.SocketAddress;
import io.vertx.core.net.impl.ConnectionBase;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gateway mode: agents send their LLM requests to {@code http://127.0.0.1:8787/<key>/…} (or the
 * Unix socket) with any placeholder key; the gateway finds the calling process (SO_PEERCRED, or the
 * loopback TCP peer through /proc), asks the same access core as an {@code open()}, applies the
 * workload's guard and the optional policy hook, strips whatever credential the caller sent,
 * injects the workload's current one and relays the answer unbuffered, reading token usage as it
 * passes. Refusals are answered here, as JSON {@code {"error":{"type":"keywarden","code","message"}}}.
 *
 * <p>Threads: requests run on Vert.x's event loop; finding a TCP peer in /proc and attestations that
 * must ask SPIRE run on {@code blocking}; an issuance the request waits for completes on the lease
 * core's thread and hops back to the event loop. The caller of a connection is found once, at its
 * first request; every request re-attests it (from caches: an exec or an exit is seen), and a TCP
 * connection whose process is gone is looked up again.
 */
public final class GatewayServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(GatewayServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Never forwarded upstream: hop-by-hop headers, and every header that may carry the caller's credential. */
    private static final Set<String> STRIP_REQUEST = Set.of("authorization", "x-api-key", "api-key", "proxy-authorization",
            "host", "content-length", "connection", "keep-alive", "proxy-connection", "te", "trailer",
            "transfer-encoding", "upgrade", "accept-encoding", "cookie");
    private static final Set<String> STRIP_RESPONSE = Set.of("connection", "keep-alive", "proxy-connection", "te",
            "trailer", "transfer-encoding", "upgrade");

    /** How a listener finds its callers. */
    enum Via { LOOPBACK_TCP, UNIX_SOCKET, MTLS }

    private final Vertx vertx;
    private final Config.Gateway config;
    private final AccessDecider decider;
    private final Supplier<Policy> policy;
    private final Function<KeySpec, Optional<Config.Upstream>> upstreamOf;
    private final GuardEngine guard;
    private final io.keywarden.daemon.guard.GatewayTally tally;
    private final PolicyHook hook;
    private final Metrics metrics;
    private final Executor blocking;
    private final PeerLookup peers;
    private final HttpClient plain;
    private final HttpClient tls;
    private final Map<HttpConnection, CompletableFuture<List<Caller>>> callers = new ConcurrentHashMap<>();
    private final List<HttpServer> servers = new ArrayList<>();

    private GatewayServer(Vertx vertx, Config.Gateway config, AccessDecider decider, Supplier<Policy> policy,
                          Function<KeySpec, Optional<Config.Upstream>> upstreamOf, GuardEngine guard,
                          io.keywarden.daemon.guard.GatewayTally tally, PolicyHook hook, Metrics metrics, Executor blocking,
                          PeerLookup peers) {
        this.tally = tally;
        this.vertx = vertx;
        this.config = config;
        this.decider = decider;
        this.policy = policy;
        this.upstreamOf = upstreamOf;
        this.guard = guard;
        this.hook = hook;
        this.metrics = metrics;
        this.blocking = blocking;
        this.peers = peers;
        int idle = (int) Math.min(Integer.MAX_VALUE, config.timeout().toSeconds());
        PoolOptions pool = new PoolOptions().setHttp1MaxSize(256).setHttp2MaxSize(8);
        this.plain = vertx.httpClientBuilder().with(new HttpClientOptions().setKeepAlive(true).setIdleTimeout(idle)
                .setProtocolVersion(HttpVersion.HTTP_1_1).setDecompressionSupported(false)).with(pool).build();
        HttpClientOptions tlsOptions = new HttpClientOptions().setKeepAlive(true).setIdleTimeout(idle).setSsl(true)
                .setUseAlpn(true).setProtocolVersion(HttpVersion.HTTP_2).setVerifyHost(true)
                .setDecompressionSupported(false);
        config.caFile().ifPresent(ca -> tlsOptions.setTrustOptions(new PemTrustOptions().addCertPath(ca.toString())));
        this.tls = vertx.httpClientBuilder().with(tlsOptions).with(pool).build();
    }

    /** Starts the listeners the config names; {@code hook} may be null. */
    public static GatewayServer start(Vertx vertx, Config.Gateway config, AccessDecider decider, Supplier<Policy> policy,
                                      Function<KeySpec, Optional<Config.Upstream>> upstreamOf, GuardEngine guard,
                                      io.keywarden.daemon.guard.GatewayTally tally, PolicyHook hook, Metrics metrics,
                                      Executor blocking, io.keywarden.attestation.spire.X509SvidSource svids)
            throws IOException {
        GatewayServer g = new GatewayServer(vertx, config, decider, policy, upstreamOf, guard, tally, hook, metrics,
                blocking, PeerLookup.system());
        try {
            if (config.listen().isPresent()) {
                var hp = config.listen().get();
                g.listen(SocketAddress.inetSocketAddress(hp.port(), hp.host()), Via.LOOPBACK_TCP, "gateway on " + hp, null);
            }
            if (config.socket().isPresent()) {
                Path sock = config.socket().get();
                String why = ChannelFd.unsupported();
                if (why != null) {
                    throw new IOException("the gateway socket " + sock + " cannot find its callers: " + why);
                }
                Path dir = sock.toAbsolutePath().getParent();
                if (!Files.isDirectory(dir)) {
                    Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions
                            .fromString("rwxr-xr-x")));
                }
                Files.deleteIfExists(sock);
                g.listen(SocketAddress.domainSocketAddress(sock.toAbsolutePath().toString()), Via.UNIX_SOCKET,
                        "gateway socket " + sock, null);
                // Anyone may connect: who they are is decided per connection, as for an open().
                Files.setPosixFilePermissions(sock, PosixFilePermissions.fromString("rw-rw-rw-"));
            }
            if (config.mtls().isPresent()) {
                var hp = config.mtls().get().listen();
                g.listen(SocketAddress.inetSocketAddress(hp.port(), hp.host()), Via.MTLS, "gateway mTLS on " + hp
                        + " (callers by X.509-SVID)", svids);
            }
        } catch (IOException | RuntimeException e) {
            g.close();
            throw e;
        }
        return g;
    }

    private void listen(SocketAddress at, Via via, String what, io.keywarden.attestation.spire.X509SvidSource svids)
            throws IOException {
        HttpServerOptions o = new HttpServerOptions().setMaxHeaderSize(64 * 1024)
                .setIdleTimeout((int) Math.min(Integer.MAX_VALUE, config.timeout().toSeconds()))
                .setDecompressionSupported(false).setCompressionSupported(false);
        if (via == Via.MTLS) {
            // Our SVID as the server certificate; the caller must present an SVID of the bundle (both rotate).
            o.setSsl(true).setClientAuth(io.vertx.core.http.ClientAuth.REQUIRED)
                    .setKeyCertOptions(io.vertx.core.net.KeyCertOptions.wrap(svids.keyManager()))
                    .setTrustOptions(io.vertx.core.net.TrustOptions.wrap(svids.trustManager()));
        }
        HttpServer s = vertx.createHttpServer(o).requestHandler(req -> handle(req, via));
        try {
            s.listen(at).await(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IOException("cannot listen: " + what + ": " + e.getMessage());
        }
        servers.add(s);
        LOG.info("{}", what);
    }

    /** The actual port of the TCP listener (tests listen on port 0). */
    public OptionalInt port() {
        for (HttpServer s : servers) {
            if (s.actualPort() > 0) {
                return OptionalInt.of(s.actualPort());
            }
        }
        return OptionalInt.empty();
    }

    // ---- one request ----

    /** What a request has learned so far, as it moves through its stages. */
    private static final class Exchange {
        final HttpServerRequest req;
        final Context ctx;
        final String key;
        final String rest;
        final Via via;
        Buffer body = Buffer.buffer();
        boolean tooLarge;
        Attestation.Identified who;
        String model;
        Config.Upstream upstream;
        String leaseId;

        Exchange(HttpServerRequest req, Context ctx, String key, String rest, Via via) {
            this.req = req;
            this.ctx = ctx;
            this.key = key;
            this.rest = rest;
            this.via = via;
        }

        String workload() {
            return who == null ? "" : who.workload().name();
        }

        /** How the ledger names what was accessed. */
        String file() {
            return via == Via.MTLS ? "gateway (mTLS)" : "gateway";
        }
    }

    private void handle(HttpServerRequest req, Via via) {
        String path = req.path();
        int slash = path.indexOf('/', 1);
        String key = path.length() <= 1 ? "" : slash < 0 ? path.substring(1) : path.substring(1, slash);
        String rest = slash < 0 ? "" : path.substring(slash + 1);
        Exchange x = new Exchange(req, vertx.getOrCreateContext(), key, rest, via);
        KeySpec spec = policy.get().keys().get(key);
        if (spec == null) {
            refuse(x, 404, "no_such_key", key.isEmpty() ? "the path must start with /<key>/" : "no key named '"
                    + (key.length() > 64 ? key.substring(0, 64) + "…" : key) + "' in the policy");
            return;
        }
        if (("/" + rest + "/").contains("/../") || ("/" + rest + "/").contains("/./") || rest.contains("%2e")
                || rest.contains("%2E") || rest.contains("\\")) {
            refuse(x, 400, "bad_request", "the path must not contain dot segments or backslashes");
            return;
        }
        Optional<Config.Upstream> up = upstreamOf.apply(spec);
        if (up.isEmpty()) {
            refuse(x, 404, "no_upstream", "the gateway has no upstream for key '" + key + "' (gateway.upstreams)");
            return;
        }
        x.upstream = up.get();
        String length = req.getHeader("content-length");
        if (length != null && parseLong(length) > config.maxBodyBytes()) {
            refuse(x, 413, "request_too_large", "the request body is larger than " + config.maxBodyBytes() + " bytes");
            return;
        }
        CompletableFuture<Void> bodyDone = new CompletableFuture<>();
        req.handler(chunk -> {
            if (x.tooLarge) {
                return;
            }
            if (x.body.length() + chunk.length() > config.maxBodyBytes()) {
                x.tooLarge = true;
                x.body = Buffer.buffer();
            } else {
                x.body.appendBuffer(chunk);
            }
        });
        req.endHandler(v -> bodyDone.complete(null));
        req.exceptionHandler(bodyDone::completeExceptionally);
        decide(x, false).thenCombine(bodyDone, (d, v) -> d).whenComplete((d, e) -> x.ctx.runOnContext(ignored -> {
            if (e != null) {
                if (!req.response().ended() && !req.response().closed()) {
                    refuse(x, 400, "bad_request", "the request could not be read");
                }
                return;
            }
            decided(x, d);
        }));
    }

    /** The access core's decision for every process that holds the connection, or for the mTLS peer's SVID. */
    private CompletionStage<Decision> decide(Exchange x, boolean fresh) {
        if (x.via == Via.MTLS) {
            return CompletableFuture.completedFuture(decideRemote(x));
        }
        return callersOf(x, fresh).thenCompose(list -> {
            if (list.isEmpty()) {
                return CompletableFuture.completedFuture((Decision) new Decision.Denied(null,
                        Decision.DenyReason.UNIDENTIFIED, "the process behind this connection could not be found"));
            }
            List<CompletableFuture<Attestation>> all = new ArrayList<>();
            for (Caller c : list) {
                all.add(decider.attest(c).toCompletableFuture());
            }
            return CompletableFuture.allOf(all.toArray(new CompletableFuture[0])).thenCompose(v -> {
                Decision first = null;
                for (CompletableFuture<Attestation> a : all) {
                    Decision d = decider.authorize(a.join(), x.key, x.file());
                    if (!(d instanceof Decision.Granted)) {
                        boolean gone = d instanceof Decision.Denied den && den.code() == Decision.DenyReason.UNIDENTIFIED
                                && !fresh && x.via == Via.LOOPBACK_TCP;
                        return gone ? decide(x, true) : CompletableFuture.completedFuture(d);
                    }
                    if (first == null) {
                        first = d;
                    } else if (!((Decision.Granted) first).who().workload().name()
                            .equals(((Decision.Granted) d).who().workload().name())) {
                        return CompletableFuture.completedFuture((Decision) new Decision.Denied(a.join(),
                                Decision.DenyReason.UNIDENTIFIED, "the connection is shared by processes of different"
                                + " workloads"));
                    }
                }
                return CompletableFuture.completedFuture(first);
            });
        });
    }

    private CompletableFuture<List<Caller>> callersOf(Exchange x, boolean fresh) {
        HttpConnection conn = x.req.connection();
        if (fresh) {
            callers.remove(conn);
        }
        return callers.computeIfAbsent(conn, c -> {
            c.closeHandler(v -> callers.remove(c));
            return CompletableFuture.supplyAsync(() -> lookup(c, x.via == Via.UNIX_SOCKET), blocking);
        });
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

    private List<Caller> lookup(HttpConnection conn, boolean unix) {
        try {
            if (unix) {
                OptionalInt fd = ChannelFd.of(((ConnectionBase) conn).channel());
                return fd.isPresent() ? PeerLookup.unixPeer(fd.getAsInt()).map(List::of).orElse(List.of()) : List.of();
            }
            SocketAddress remote = conn.remoteAddress();
            SocketAddress local = conn.localAddress();
            return peers.tcpPeers(new InetSocketAddress(InetAddress.getByName(remote.hostAddress()), remote.port()),
                    new InetSocketAddress(InetAddress.getByName(local.hostAddress()), local.port()));
        } catch (IOException | RuntimeException e) {
            LOG.warn("gateway: cannot find the process behind a connection: {}", e.toString());
            return List.of();
        }
    }

    private void decided(Exchange x, Decision d) {
        if (d instanceof Decision.Granted g) {
            x.who = g.who();
            guarded(x);
        } else if (d instanceof Decision.Denied den) {
            refuse(x, 403, "not_permitted", den.reason());
        } else if (d instanceof Decision.Unavailable u) {
            refuse(x, 503, "credential_unavailable", u.reason());
        } else {
            refuse(x, 404, "no_such_key", "no key named '" + x.key + "' in the policy");
        }
    }

    /** The workload's guard, then the policy hook, then the credential. */
    private void guarded(Exchange x) {
        if (x.tooLarge) {
            refuse(x, 413, "request_too_large", "the request body is larger than " + config.maxBodyBytes() + " bytes");
            return;
        }
        Workload w = x.who.workload();
        ObjectNode json = null;
        if (x.body.length() > 0 && looksJson(x)) {
            try {
                JsonNode n = JSON.readTree(x.body.getBytes());
                json = n instanceof ObjectNode o ? o : null;
            } catch (IOException e) {
                json = null;
            }
        }
        if (json != null && json.hasNonNull("model") && json.get("model").isTextual()) {
            x.model = json.get("model").asText();
        }
        Admission a = guard.admit(w, x.model);
        if (a instanceof Admission.ModelRefused m) {
            refuse(x, 403, "model_not_allowed", "workload " + w.name() + " may not use model "
                    + (m.model() == null ? "(none named in the request)" : "'" + m.model() + "'") + "; allowed: "
                    + String.join(", ", m.allowed()));
            return;
        }
        if (a instanceof Admission.OverBudget o) {
            long secs = Math.max(1, (o.retryAfter().toMillis() + 999) / 1000);
            x.req.response().putHeader("retry-after", Long.toString(secs));
            refuse(x, 429, "budget_exceeded", "workload " + w.name() + " is over its " + o.kind().label().replace('_', ' ')
                    + " budget (" + o.observed() + " of " + o.limit() + "); retry after " + secs + " s");
            return;
        }
        if (json != null && addStreamUsage(x, json)) {
            x.body = Buffer.buffer(json.toString());
        }
        CompletionStage<PolicyHook.Verdict> verdict = hook == null
                ? CompletableFuture.completedFuture(new PolicyHook.Verdict(true, ""))
                : hook.decide(w, x.key, x.model, x.who.process(), "gateway");
        verdict.whenComplete((v, e) -> x.ctx.runOnContext(ignored -> {
            if (e != null || !v.allowed()) {
                refuse(x, 403, "not_permitted", e != null ? "policy hook failed" : v.reason());
                return;
            }
            decider.obtain(x.who, x.key, x.file()).whenComplete((d, err) -> x.ctx.runOnContext(i2 -> {
                if (err != null) {
                    refuse(x, 503, "credential_unavailable", "no credential: " + err.getClass().getSimpleName());
                } else if (d instanceof Decision.Granted g && g.issued() != null) {
                    forward(x, g.issued());
                } else if (d instanceof Decision.Denied den) {
                    refuse(x, 403, "not_permitted", den.reason());
                } else if (d instanceof Decision.Unavailable u) {
                    refuse(x, 503, "credential_unavailable", u.reason());
                } else {
                    refuse(x, 503, "credential_unavailable", "no credential for key " + x.key);
                }
            }));
        }));
    }

    private static boolean looksJson(Exchange x) {
        String ct = x.req.getHeader("content-type");
        return (ct != null && ct.toLowerCase(Locale.ROOT).contains("json")) || x.body.getByte(0) == '{';
    }

    /**
     * OpenAI-style streams report usage only when asked: add {@code stream_options.include_usage}
     * when the caller streams and did not set it (the agent then sees one more, usage-only chunk).
     */
    private static boolean addStreamUsage(Exchange x, ObjectNode json) {
        if (!json.path("stream").asBoolean(false) || !x.rest.endsWith("chat/completions")) {
            return false;
        }
        JsonNode opts = json.get("stream_options");
        if (opts != null && opts.isObject() && opts.has("include_usage")) {
            return false;
        }
        if (opts != null && !opts.isObject()) {
            return false;
        }
        (opts == null ? json.putObject("stream_options") : (ObjectNode) opts).put("include_usage", true);
        return true;
    }

    private void forward(Exchange x, IssuedKey issued) {
        x.leaseId = issued.leaseId();
        URI base = x.upstream.url();
        String basePath = base.getRawPath() == null ? "" : base.getRawPath().replaceAll("/+$", "");
        String target = base.getScheme() + "://" + base.getRawAuthority() + basePath + "/" + x.rest
                + (x.req.query() == null ? "" : "?" + x.req.query());
        RequestOptions o = new RequestOptions().setMethod(x.req.method()).setAbsoluteURI(target)
                .setIdleTimeout(config.timeout().toMillis());
        MultiMap h = o.getHeaders() == null ? MultiMap.caseInsensitiveMultiMap() : o.getHeaders();
        for (Map.Entry<String, String> e : x.req.headers()) {
            if (!STRIP_REQUEST.contains(e.getKey().toLowerCase(Locale.ROOT))) {
                h.add(e.getKey(), e.getValue());
            }
        }
        byte[] secret = issued.secretCopy();
        try {
            String cred = new String(secret, StandardCharsets.US_ASCII);
            switch (x.upstream.auth()) {
                case BEARER -> h.set("authorization", "Bearer " + cred);
                case X_API_KEY -> h.set("x-api-key", cred);
                case API_KEY -> h.set("api-key", cred);
                default -> throw new IllegalStateException();
            }
        } finally {
            Arrays.fill(secret, (byte) 0);
        }
        for (String line : issued.headers().split("\n")) {
            int colon = line.indexOf(':');
            if (colon > 0) {
                String name = line.substring(0, colon).trim();
                String value = line.substring(colon + 1).trim();
                String theirs = h.get(name);
                h.set(name, theirs == null || theirs.contains(value) ? value : theirs + "," + value);
            }
        }
        h.set("accept-encoding", "identity");
        o.setHeaders(h);
        HttpClient client = "https".equals(base.getScheme()) ? tls : plain;
        Buffer body = x.body;
        x.body = null;
        client.request(o).compose(creq -> {
            x.req.response().closeHandler(v -> creq.reset());
            return creq.send(body);
        }).onComplete(ar -> {
            if (ar.failed()) {
                LOG.warn("gateway: upstream {} for key {} failed: {}", base.getHost(), x.key, ar.cause().toString());
                refuse(x, 502, "upstream_unreachable", "the upstream for key " + x.key + " did not answer: "
                        + ar.cause().getClass().getSimpleName());
                return;
            }
            relay(x, ar.result());
        });
    }

    private void relay(Exchange x, HttpClientResponse in) {
        HttpServerResponse out = x.req.response();
        out.setStatusCode(in.statusCode());
        if (in.statusMessage() != null) {
            out.setStatusMessage(in.statusMessage());
        }
        for (Map.Entry<String, String> e : in.headers()) {
            if (!STRIP_RESPONSE.contains(e.getKey().toLowerCase(Locale.ROOT))) {
                out.headers().add(e.getKey(), e.getValue());
            }
        }
        if (in.getHeader("content-length") == null) {
            out.setChunked(true);
        }
        UsageSensor sensor = new UsageSensor(in.getHeader("content-type"));
        boolean[] done = {false};
        in.handler(chunk -> {
            sensor.feed(chunk.getBytes());
            out.write(chunk);
            if (out.writeQueueFull()) {
                in.pause();
                out.drainHandler(v -> in.resume());
            }
        });
        in.endHandler(v -> {
            out.end();
            if (!done[0]) {
                done[0] = true;
                account(x, in.statusCode(), sensor);
            }
        });
        in.exceptionHandler(e -> {
            if (!done[0]) {
                done[0] = true;
                account(x, in.statusCode(), sensor);
                x.req.connection().close();
            }
        });
    }

    /** Usage reaches the guard and the meters; nothing of the content does. */
    private void account(Exchange x, int status, UsageSensor sensor) {
        sensor.end();
        Workload w = x.who.workload();
        String model = sensor.model() != null ? sensor.model() : x.model;
        tally.add(x.leaseId, java.time.Instant.now(), sensor.inputTokens(), sensor.outputTokens(), 1);
        guard.record(w, model, sensor.inputTokens(), sensor.outputTokens(), 1, "gateway");
        if (sensor.found()) {
            metrics.tokens(w.name(), x.key, model, sensor.inputTokens(), sensor.outputTokens());
        }
        metrics.gatewayRequest(w.name(), x.key, status < 400 ? "ok" : "upstream_" + (status / 100) + "xx");
    }

    private void refuse(Exchange x, int status, String code, String message) {
        // A key name the policy does not have is the caller's text: never a metric label.
        metrics.gatewayRequest(x.workload(), policy.get().keys().containsKey(x.key) ? x.key : "", code);
        HttpServerResponse r = x.req.response();
        if (r.ended() || r.closed()) {
            return;
        }
        ObjectNode err = JSON.createObjectNode();
        err.putObject("error").put("type", "keywarden").put("code", code).put("message", message);
        r.setStatusCode(status).putHeader("content-type", "application/json").end(err.toString());
        if (status == 413 || status == 400) {
            // What is left of the body is not read: the connection cannot be reused.
            x.req.connection().close();
        }
    }

    private static long parseLong(String s) {
        try {
            return Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            return Long.MAX_VALUE;
        }
    }

    @Override
    public void close() {
        for (HttpServer s : servers) {
            try {
                s.close().await(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                LOG.debug("gateway listener did not close cleanly: {}", e.toString());
            }
        }
        try {
            plain.close().await(5, TimeUnit.SECONDS);
            tls.close().await(5, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.debug("gateway clients did not close cleanly: {}", e.toString());
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
