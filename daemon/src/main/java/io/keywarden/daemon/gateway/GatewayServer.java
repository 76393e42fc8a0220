package io.keywarden.daemon.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.keywarden.daemon.guard.Admission;
import io.keywarden.daemon.guard.GuardEngine;
import io.keywarden.daemon.hook.PolicyHook;
import io.keywarden.daemon.ops.GatewayMetrics;
import io.keywarden.daemon.ops.GatewayMetrics.Outcome;
import io.keywarden.delivery.AccessDecider;
import io.keywarden.delivery.Decision;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import java.io.IOException;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
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
 * <p>Threads: a connection's requests run on the event loop that took it (one HTTP server per loop,
 * {@link GatewayListeners}); finding a TCP peer in /proc and attestations that
 * must ask SPIRE run on {@code blocking}; an issuance the request waits for completes on the lease
 * core's thread and hops back to the event loop. The caller of a connection is found once, at its
 * first request; every request re-attests it (from caches: an exec or an exit is seen), and a TCP
 * connection whose process is gone is looked up again.
 *
 * <p>Over 400 lines: the request's stages (read, decide, guard, admit, refuse) in one place, in the
 * order a request meets them; the listeners, connections, the caller's proof and the upstream call
 * are their own classes ({@link GatewayListeners}, {@link GatewayConnections}, {@link CallerProof},
 * {@link UpstreamCall}).
 */
public final class GatewayServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(GatewayServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** How a listener finds its callers. */
    enum Via { LOOPBACK_TCP, UNIX_SOCKET, MTLS }

    private final Vertx vertx;
    private final GatewaySettings config;
    private final AccessDecider decider;
    private final Supplier<Policy> policy;
    private final Function<KeySpec, Optional<GatewaySettings.Upstream>> upstreamOf;
    private final GuardEngine guard;
    /** Token budgets: {@code guard} itself on one node, the fleet's store across nodes. */
    private final io.keywarden.daemon.guard.TokenBudgets budgets;
    private final io.keywarden.daemon.guard.GatewayTally tally;
    private final PolicyHook hook;
    private final GatewayMetrics metrics;
    private final Executor blocking;
    private final PeerLookup peers;
    private final GatewaySettings.Limits limits;
    private final GatewayConnections connections;
    private final CallerProof callers;
    private final UpstreamCall upstreams;
    private final GatewayListeners listeners;

    private GatewayServer(Vertx vertx, GatewaySettings config, AccessDecider decider, Supplier<Policy> policy,
                          Function<KeySpec, Optional<GatewaySettings.Upstream>> upstreamOf, GuardEngine guard,
                          io.keywarden.daemon.guard.TokenBudgets budgets,
                          io.keywarden.daemon.guard.GatewayTally tally, PolicyHook hook, GatewayMetrics metrics, Executor blocking,
                          PeerLookup peers, int eventLoops) {
        this.budgets = budgets;
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
        this.limits = config.limits();
        this.connections = new GatewayConnections(vertx, config, metrics, peers);
        this.callers = new CallerProof(decider, peers, blocking);
        this.upstreams = new UpstreamCall(vertx, config, budgets, tally, metrics, this::refuse);
        this.listeners = new GatewayListeners(vertx, config, eventLoops, connections, metrics, this::handle);
    }

    /** Starts the listeners the config names; {@code hook} may be null. */
    public static GatewayServer start(Vertx vertx, GatewaySettings config, AccessDecider decider, Supplier<Policy> policy,
                                      Function<KeySpec, Optional<GatewaySettings.Upstream>> upstreamOf, GuardEngine guard,
                                      io.keywarden.daemon.guard.TokenBudgets budgets,
                                      io.keywarden.daemon.guard.GatewayTally tally, PolicyHook hook, GatewayMetrics metrics,
                                      Executor blocking, int eventLoops,
                                      io.keywarden.attestation.spire.X509SvidSource svids)
            throws IOException {
        GatewayServer g = new GatewayServer(vertx, config, decider, policy, upstreamOf, guard, budgets, tally, hook, metrics,
                blocking, PeerLookup.system(), eventLoops);
        try {
            g.listeners.open(svids);
        } catch (IOException | RuntimeException e) {
            g.close();
            throw e;
        }
        return g;
    }

    /** The event loops (by thread name) that have served a connection so far. */
    java.util.Set<String> loopsServing() {
        return java.util.Set.copyOf(connections.loopsServing);
    }

    /** The actual port of the TCP listener (tests listen on port 0). */
    public OptionalInt port() {
        return listeners.port();
    }

    // ---- one request ----

    private void handle(HttpServerRequest req, Via via) {
        HttpConnection hc = req.connection();
        Conn conn = connections.get(hc);
        if (conn == null) {
            conn = connections.opened(hc, via);
        }
        if (conn.refused) {
            hc.close();
            return;
        }
        conn.inFlight++;
        if (conn.idleTimer >= 0) {
            vertx.cancelTimer(conn.idleTimer);
            conn.idleTimer = -1;
        }
        String path = req.path() == null ? "" : req.path();
        int slash = path.indexOf('/', 1);
        String key = path.length() <= 1 ? "" : slash < 0 ? path.substring(1) : path.substring(1, slash);
        String rest = slash < 0 ? "" : path.substring(slash + 1);
        Exchange x = new Exchange(req, vertx.getOrCreateContext(), key, rest, via, conn);
        req.response().endHandler(v -> finish(x, false));
        req.response().closeHandler(v -> finish(x, true));
        if (!path.startsWith("/")) {
            refuse(x, 400, Outcome.BAD_REQUEST, "the request target must be a path (origin form)");
            return;
        }
        KeySpec spec = policy.get().keys().get(key);
        if (spec == null) {
            refuse(x, 404, Outcome.NO_SUCH_KEY, noSuchKey(key));
            return;
        }
        try {
            x.rest = ForwardPath.normalise(rest);
            ForwardPath.checkQuery(req.query());
        } catch (ForwardPath.Refused e) {
            refuse(x, 400, Outcome.BAD_REQUEST, e.getMessage());
            return;
        }
        if (!ForwardPath.validMethod(req.method().name())) {
            refuse(x, 400, Outcome.BAD_REQUEST, "the request method is not an HTTP token");
            return;
        }
        for (Map.Entry<String, String> h : req.headers()) {
            if (!ForwardPath.validHeader(h.getKey(), h.getValue())) {
                refuse(x, 400, Outcome.BAD_REQUEST, "a request header has a malformed name or value");
                return;
            }
        }
        Optional<GatewaySettings.Upstream> up = upstreamOf.apply(spec);
        if (up.isEmpty()) {
            refuse(x, 404, Outcome.NO_UPSTREAM, "the gateway has no upstream for key '" + key + "' (gateway.upstreams)");
            return;
        }
        x.upstream = up.get();
        long maxBody = x.upstream.maxBodyBytes().orElse(config.maxBodyBytes());
        String length = req.getHeader("content-length");
        if (length != null && parseLong(length) > maxBody) {
            refuse(x, 413, Outcome.REQUEST_TOO_LARGE, "the request body is larger than " + maxBody + " bytes");
            return;
        }
        CompletableFuture<Void> bodyDone = new CompletableFuture<>();
        req.handler(chunk -> {
            if (x.finished || req.response().ended()) {
                return;
            }
            if (x.body.length() + chunk.length() > maxBody) {
                refuse(x, 413, Outcome.REQUEST_TOO_LARGE, "the request body is larger than " + maxBody + " bytes");
                connections.release(x);
                return;
            }
            if (!connections.hold(x, chunk.length())) {
                x.closeAfter = true;
                refuse(x, 503, Outcome.GATEWAY_BUSY, "the gateway holds as many request bodies as it may"
                        + " (gateway.maxBufferedBytes); retry later");
                connections.release(x);
                return;
            }
            x.body.appendBuffer(chunk);
        });
        req.endHandler(v -> bodyDone.complete(null));
        req.exceptionHandler(bodyDone::completeExceptionally);
        // A caller that may not use the key is answered at once, without reading its body.
        callers.decide(x).whenComplete((d, e) -> onLoop(x, () -> {
            if (req.response().ended() || req.response().closed()) {
                return;
            }
            if (e != null || !(d instanceof Decision.Granted)) {
                x.closeAfter = true;
                if (e != null) {
                    refuse(x, 403, Outcome.NOT_PERMITTED, "the caller could not be attested");
                } else {
                    decided(x, d);
                }
                connections.release(x);
                return;
            }
            bodyDone.whenComplete((v, be) -> onLoop(x, () -> {
                if (req.response().ended() || req.response().closed()) {
                    return;
                }
                if (be != null) {
                    refuse(x, 400, Outcome.BAD_REQUEST, "the request could not be read");
                    return;
                }
                decided(x, d);
            }));
        }));
    }

    /**
     * The next stage of an exchange, on its connection's event loop: at once when this thread is
     * that loop (a stage that completed without waiting: a cached attestation, the node's own
     * budget, a lease in hand), else queued to it (an answer from SPIRE, the fleet's store, an
     * issuer). A stage that throws is logged and its request answered 500 rather than left hanging.
     */
    private void onLoop(Exchange x, Runnable next) {
        if (Thread.currentThread() == x.loop) {
            stage(x, next);
        } else {
            x.ctx.runOnContext(ignored -> stage(x, next));
        }
    }

    private void stage(Exchange x, Runnable next) {
        try {
            next.run();
        } catch (RuntimeException e) {
            LOG.error("gateway: a request's stage failed ({}); answered 500", e.getClass().getName(), e);
            x.closeAfter = true;
            refuse(x, 500, Outcome.INTERNAL_ERROR, "the gateway failed on this request; see its log");
        }
    }

    /**
     * The end of an exchange, answered or cut: its memory is released, the connection's idle timer
     * rearmed, and a reservation still open settled: to nothing when the request never reached the
     * upstream, else to its worst case (the agent hung up: the upstream may bill what it generated).
     */
    private void finish(Exchange x, boolean cut) {
        if (x.finished) {
            return;
        }
        x.finished = true;
        connections.release(x);
        if (cut && x.upstreamRequest != null) {
            x.upstreamRequest.reset();
        }
        if (x.reservation != null && x.who != null) {
            long charge = x.sent ? x.reservation.tokens() : 0;
            budgets.settle(x.who.workload(), x.reservation, x.model, charge, 0, "gateway");
        }
        if (x.redactor != null) {
            x.redactor.wipe();
        }
        Conn conn = x.conn;
        conn.inFlight = Math.max(0, conn.inFlight - 1);
        if (conn.inFlight == 0) {
            connections.armIdle(x.req.connection(), conn);
        }
    }

    /** The access core's decision on the caller: a grant goes on to the guard, anything else is refused. */
    private void decided(Exchange x, Decision d) {
        if (d instanceof Decision.Granted g) {
            x.who = g.who();
            guarded(x);
        } else {
            refuse(x, d);
        }
    }

    /**
     * The gateway's one mapping of a decision that serves nothing to its answer: denied 403
     * {@code not_permitted}, unavailable (or a grant without a key) 503 {@code credential_unavailable},
     * no such key 404 {@code no_such_key}.
     */
    private void refuse(Exchange x, Decision d) {
        if (d instanceof Decision.Denied den) {
            // The caller learns who the gateway saw and which rule refused it (never anything of another workload).
            refuse(x, 403, Outcome.NOT_PERMITTED, den.reason() + " (rule: " + den.code().label() + "; caller "
                    + caller(den.who()) + "; keywarden why --pid on the node explains it)");
        } else if (d instanceof Decision.Unavailable u) {
            refuse(x, 503, Outcome.CREDENTIAL_UNAVAILABLE, u.reason());
        } else if (d instanceof Decision.NoSuchKey) {
            refuse(x, 404, Outcome.NO_SUCH_KEY, noSuchKey(x.key));
        } else {
            refuse(x, 503, Outcome.CREDENTIAL_UNAVAILABLE, "no credential for key " + x.key);
        }
    }

    /** "no key named 'v1' …", with the keys there are and the path's shape (a missing /openai prefix, say). */
    private String noSuchKey(String key) {
        String keys = String.join(", ", policy.get().keys().keySet());
        String first = policy.get().keys().keySet().stream().findFirst().orElse("KEY");
        return (key.isEmpty() ? "the path must start with /<key>/" : "no key named '" + (key.length() > 64
                ? key.substring(0, 64) + "…" : key) + "' in the policy") + "; keys: " + keys + " (paths are /<key>/…, e.g."
                + " base URL http://HOST:PORT/" + first + "/v1)";
    }

    /** "pid 4242 uid 1001 exe /usr/bin/python3", as the gateway attested the caller. */
    private static String caller(io.keywarden.attestation.Attestation a) {
        io.keywarden.attestation.ProcessInfo p = a == null ? null : a.process();
        return p == null ? "(no local process)" : "pid " + p.pid() + " uid " + Integer.toUnsignedString(p.uid()) + " exe "
                + p.exe().orElse("(unreadable)");
    }

    /** The workload's guard (model, then the request's worst case reserved), then the policy hook, then the credential. */
    private void guarded(Exchange x) {
        Workload w = x.who.workload();
        RequestFacts facts = null;
        if (x.body.length() > 0 && looksJson(x)) {
            try {
                facts = read(x.body);
            } catch (IOException e) {
                // A JSON body that is not JSON: the caller's mistake, said as such (not a model refusal).
                String why = e instanceof com.fasterxml.jackson.core.JsonProcessingException j ? j.getOriginalMessage()
                        : e.getMessage();
                why = why == null ? "unparsable" : why.lines().findFirst().orElse("unparsable");
                refuse(x, 400, Outcome.BAD_REQUEST, "the request body is not valid JSON (" + (why.length() > 120
                        ? why.substring(0, 120) + "…" : why) + ")");
                return;
            }
        }
        RequestFacts json = facts != null && facts.object ? facts : null;
        if (json != null && json.model != null) {
            x.model = json.model;
        }
        x.bodyBytes = x.body.length();
        budgets.reserve(w, x.model, worstCase(json, x.bodyBytes, limits.defaultMaxOutputTokens()))
                .whenComplete((a, e) -> onLoop(x, () -> admitted(x, json,
                        e != null ? new Admission.Unavailable("the budget could not be checked") : a)));
    }

    /** The request body's facts, read where it lies (a heap buffer) or from a copy. */
    private static RequestFacts read(Buffer body) throws IOException {
        io.netty.buffer.ByteBuf b = ((io.vertx.core.internal.buffer.BufferInternal) body).getByteBuf();
        if (b.hasArray()) {
            return RequestFacts.read(b.array(), b.arrayOffset() + b.readerIndex(), b.readableBytes());
        }
        byte[] copy = body.getBytes();
        return RequestFacts.read(copy, 0, copy.length);
    }

    /** The guard's answer; then the policy hook and the credential. */
    private void admitted(Exchange x, RequestFacts json, Admission a) {
        Workload w = x.who.workload();
        if (x.finished || x.req.response().ended() || x.req.response().closed()) {
            if (a instanceof Admission.Allowed ok && ok.reservation() != null) {
                budgets.settle(w, ok.reservation(), x.model, 0, 0, "gateway");
            }
            return;
        }
        if (a instanceof Admission.ModelRefused m) {
            refuse(x, 403, Outcome.MODEL_NOT_ALLOWED, "workload " + w.name() + " may not use model "
                    + (m.model() == null ? "(none named in the request)" : "'" + m.model() + "'") + "; allowed: "
                    + String.join(", ", m.allowed()));
            return;
        }
        if (a instanceof Admission.Unavailable u) {
            refuse(x, 503, Outcome.FLEET_UNAVAILABLE, u.reason());
            return;
        }
        if (a instanceof Admission.OverBudget o) {
            long secs = Math.max(1, (o.retryAfter().toMillis() + 999) / 1000);
            x.req.response().putHeader("retry-after", Long.toString(secs));
            refuse(x, 429, Outcome.BUDGET_EXCEEDED, "workload " + w.name() + " is over its " + o.kind().label().replace('_', ' ')
                    + " budget (" + o.observed() + " of " + o.limit() + " with this request's worst case and those in"
                    + " flight); retry after " + secs + " s");
            return;
        }
        x.reservation = ((Admission.Allowed) a).reservation();
        Buffer forced = json == null ? null : forceStreamUsage(x, json);
        if (forced != null) {
            if (forced.length() > x.held && !connections.hold(x, forced.length() - x.held)) {
                refuse(x, 503, Outcome.GATEWAY_BUSY, "the gateway holds as many request bodies as it may; retry later");
                return;
            }
            x.body = forced;
        }
        CompletionStage<PolicyHook.Verdict> verdict = hook == null
                ? CompletableFuture.completedFuture(new PolicyHook.Verdict(true, ""))
                : hook.decide(w, x.key, x.model, x.who.process(), "gateway");
        verdict.whenComplete((v, e) -> onLoop(x, () -> {
            if (e != null || !v.allowed()) {
                refuse(x, 403, Outcome.NOT_PERMITTED, e != null ? "policy hook failed" : v.reason());
                return;
            }
            decider.obtain(x.who, x.key, x.file()).whenComplete((d, err) -> onLoop(x, () -> {
                if (err != null) {
                    refuse(x, 503, Outcome.CREDENTIAL_UNAVAILABLE, "no credential: " + err.getClass().getSimpleName());
                } else if (d instanceof Decision.Granted g && g.issued() != null) {
                    upstreams.forward(x, g.issued());
                } else {
                    refuse(x, d);
                }
            }));
        }));
    }

    /**
     * A request's worst case in tokens: its body's size in bytes (a token covers at least one byte of
     * the text it encodes, and the JSON around the text is larger than the few tokens a message
     * costs) plus its output limit ({@code max_tokens}, {@code max_completion_tokens},
     * {@code max_output_tokens}: the largest named) times its number of choices ({@code n}), or
     * {@code defaultOut} for a request that names no limit.
     */
    static long worstCase(RequestFacts json, long bodyBytes, long defaultOut) {
        long out = json == null ? -1 : json.outputLimit();
        if (out < 0) {
            out = defaultOut;
        }
        long n = json == null ? 1 : json.choices();
        return bodyBytes + Math.min(out, 100_000_000L) * n;
    }

    private static boolean looksJson(Exchange x) {
        String ct = x.req.getHeader("content-type");
        return (ct != null && ct.toLowerCase(Locale.ROOT).contains("json")) || x.body.getByte(0) == '{';
    }

    /**
     * OpenAI-style streams (chat completions, legacy completions) report usage only when asked: the
     * gateway always asks ({@code stream_options.include_usage: true}) so that every stream can be
     * counted, and drops the usage-only chunk toward an agent that did not ask for it. Returns the
     * body to send instead, or null to send it as it came. A body with no {@code stream_options}
     * gets the member inserted after its opening brace (the agent's bytes otherwise as sent); one
     * whose {@code stream_options} is null or an object without {@code include_usage}, or that is
     * not UTF-8, is rewritten from its parsed tree (as UTF-8).
     */
    private static Buffer forceStreamUsage(Exchange x, RequestFacts json) {
        if (!json.stream
                || !(x.rest.endsWith("chat/completions") || x.rest.endsWith("/completions") || x.rest.equals("completions"))) {
            return null;
        }
        if (json.streamOptions == RequestFacts.Options.OTHER
                || json.streamOptions == RequestFacts.Options.OBJECT && json.includeUsage) {
            return null;
        }
        x.dropUsageChunk = true;
        if (json.streamOptions == RequestFacts.Options.ABSENT && json.openAt >= 0) {
            int at = json.openAt + 1;
            return Buffer.buffer(x.body.length() + INCLUDE_USAGE.length).appendBuffer(x.body, 0, at)
                    .appendBytes(INCLUDE_USAGE).appendBuffer(x.body, at, x.body.length() - at);
        }
        try {
            ObjectNode tree = (ObjectNode) JSON.readTree(x.body.getBytes());
            JsonNode opts = tree.get("stream_options");
            (opts == null || opts.isNull() ? tree.putObject("stream_options") : (ObjectNode) opts).put("include_usage", true);
            return Buffer.buffer(tree.toString());
        } catch (IOException | ClassCastException e) {
            throw new IllegalStateException("a request body read once as a JSON object did not read again", e);
        }
    }

    private static final byte[] INCLUDE_USAGE = "\"stream_options\":{\"include_usage\":true},"
            .getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    void refuse(Exchange x, int status, Outcome code, String message) {
        // A key name the policy does not have is the caller's text: never a metric label.
        metrics.gatewayRequest(x.workload(), policy.get().keys().containsKey(x.key) ? x.key : "", code);
        HttpServerResponse r = x.req.response();
        if (r.ended() || r.closed()) {
            return;
        }
        ObjectNode err = JSON.createObjectNode();
        err.putObject("error").put("type", "keywarden").put("code", code.label()).put("message", message);
        r.setStatusCode(status).putHeader("content-type", "application/json").end(err.toString());
        if (status == 413 || status == 400 || x.closeAfter) {
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
        listeners.close();
        upstreams.close();
    }
}
