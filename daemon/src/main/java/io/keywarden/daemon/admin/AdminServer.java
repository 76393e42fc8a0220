package io.keywarden.daemon.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.delivery.KeyFs;
import io.keywarden.policy.Policy;
import io.keywarden.policy.SpiffeId;
import io.keywarden.policy.Workload;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.NetServer;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.SocketAddress;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin API on a Unix socket (mode 0600, in a 0700 directory): one JSON request line, one
 * JSON answer line. {@code status} (never secrets), {@code revoke} (optionally {@code block}),
 * {@code unblock}. The caller's uid (SO_PEERCRED) goes into the ledger with the reason.
 *
 * <p>Served by the daemon's Vert.x (a NetServer on the Unix socket, on the same Netty as the ops
 * server; the caller's uid through {@link io.keywarden.daemon.net.ChannelFd}): connections are concurrent on the event loop;
 * each has {@link #READ_TIMEOUT} to send its request line of at most {@link #MAX_REQUEST} bytes,
 * at most {@link #MAX_CLIENTS} are open at once (more are closed at once), and the request itself
 * (issuer calls, ledger writes) runs on Vert.x's worker pool, so an idle, slow or flooding client
 * never delays the kill switch of another.
 *
 * <p>Over 400 lines: the socket's bounds and every operation's handler (status, revoke and block,
 * unblock, why, audit show) with the ledger record each writes before it acts, read in one place.
 */
public final class AdminServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(AdminServer.class);
    static final ObjectMapper JSON = new ObjectMapper();
    static final int MAX_REQUEST = 64 * 1024;
    static final int MAX_CLIENTS = 64;
    static final java.time.Duration READ_TIMEOUT = java.time.Duration.ofSeconds(2);

    private final java.util.concurrent.atomic.AtomicInteger clients = new java.util.concurrent.atomic.AtomicInteger();
    private final Vertx vertx;
    private final Path socket;
    private final LeaseManager leases;
    private final Supplier<Policy> policy;
    private final Map<String, String> info;
    private final io.keywarden.daemon.blocks.BlockList blocks;
    private final Recorder recorder;
    private volatile NetServer server;

    /** Writes an operator action to the ledger before it takes effect; throws when it cannot. */
    @FunctionalInterface
    public interface Recorder {
        void record(io.keywarden.daemon.audit.LedgerEvent event, Map<String, Object> fields);
    }

    /** Where {@code --fleet} blocks and unblocks go: the fleet's store, which every node follows. */
    public interface FleetBlocks {
        java.util.concurrent.CompletionStage<Void> block(String spiffeId, String reason);

        java.util.concurrent.CompletionStage<Void> unblock(String spiffeId);

        /** Every node's last inventory entry ({@code keywarden fleet status}). */
        java.util.concurrent.CompletionStage<java.util.List<ObjectNode>> inventory();
    }

    /** This node's {@code status}: its leases and blocks, never secrets (also its fleet inventory entry). */
    public ObjectNode statusJson() {
        return status();
    }

    private ObjectNode fleetInventory() {
        FleetBlocks f = fleet;
        if (f == null) {
            return JSON.createObjectNode().put("ok", false).put("error", "this node has no fleet (no fleet: in its config)");
        }
        try {
            java.util.List<ObjectNode> nodes = f.inventory().toCompletableFuture().get(5, java.util.concurrent.TimeUnit.SECONDS);
            ObjectNode o = JSON.createObjectNode().put("ok", true);
            nodes.forEach(o.putArray("nodes")::add);
            return o;
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            return JSON.createObjectNode().put("ok", false).put("error", "the fleet's store did not answer: "
                    + (e.getCause() == null ? e : e.getCause()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return JSON.createObjectNode().put("ok", false).put("error", "interrupted");
        }
    }

    /** Set when the daemon has a fleet; null otherwise. */
    private volatile FleetBlocks fleet;

    public void fleet(FleetBlocks f) {
        this.fleet = f;
    }

    /** Waits (bounded) for the fleet to take a block or unblock; the error, or null. */
    private String toFleet(boolean fleetWide, java.util.function.Function<FleetBlocks,
            java.util.concurrent.CompletionStage<Void>> op) {
        if (!fleetWide) {
            return null;
        }
        FleetBlocks f = fleet;
        if (f == null) {
            return "this node has no fleet (no fleet: in its config): applied on this node only";
        }
        try {
            op.apply(f).toCompletableFuture().get(5, java.util.concurrent.TimeUnit.SECONDS);
            return null;
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            return "not stored in the fleet (" + (e.getCause() == null ? e : e.getCause()).toString()
                    + "): applied on this node only";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted before the fleet took it";
        }
    }

    private AdminServer(Vertx vertx, Path socket, LeaseManager leases, Supplier<Policy> policy, Map<String, String> info,
                        io.keywarden.daemon.blocks.BlockList blocks, Recorder recorder) {
        this.vertx = vertx;
        this.socket = socket;
        this.leases = leases;
        this.policy = policy;
        this.info = info;
        this.blocks = blocks;
        this.recorder = recorder;
    }

    public static AdminServer start(Vertx vertx, Path socket, LeaseManager leases, Supplier<Policy> policy,
                                    Map<String, String> info, io.keywarden.daemon.blocks.BlockList blocks, Recorder recorder) throws IOException {
        io.keywarden.linux.SafePaths.directory(socket.toAbsolutePath().getParent(), io.keywarden.linux.SafePaths.PRIVATE,
                "the admin socket " + socket);
        AdminServer s = new AdminServer(vertx, socket, leases, policy, info, blocks, recorder);
        NetServer server = vertx.createNetServer().connectHandler(s::connected);
        io.keywarden.linux.SafePaths.placeSocket(socket, PosixFilePermissions.fromString("rw-------"),
                "the admin socket " + socket, at -> {
                    try {
                        server.listen(SocketAddress.domainSocketAddress(at.toString())).await(10, TimeUnit.SECONDS);
                    } catch (Exception e) {
                        throw new IOException("cannot listen on the admin socket " + socket + ": " + e.getMessage(), e);
                    }
                });
        s.server = server;
        return s;
    }

    /** The connections open now (for tests: the 65th is refused only once 64 are counted). */
    int clientsConnected() {
        return clients.get();
    }

    /** One connection: gather the request line within the deadline, answer it off the event loop, close. */
    private void connected(NetSocket so) {
        if (clients.incrementAndGet() > MAX_CLIENTS) {
            clients.decrementAndGet();
            LOG.warn("admin API: {} clients already connected; refusing another", MAX_CLIENTS);
            so.close();
            return;
        }
        so.closeHandler(v -> clients.decrementAndGet());
        String who = peer(so);
        Buffer line = Buffer.buffer();
        boolean[] answered = {false};
        long deadline = vertx.setTimer(READ_TIMEOUT.toMillis(), id -> {
            if (!answered[0]) {
                answered[0] = true;
                LOG.warn("admin client ({}) sent no complete request within {} s; dropped", who, READ_TIMEOUT.toSeconds());
                so.close();
            }
        });
        boolean[] oversized = {false};
        so.handler(chunk -> {
            if (answered[0]) {
                return;
            }
            int nl = indexOf(chunk, (byte) '\n');
            if (!oversized[0] && line.length() + (nl < 0 ? chunk.length() : nl) > MAX_REQUEST) {
                // Too long: drop it, read on to its end (so the client is there to read the answer),
                // still within the deadline.
                oversized[0] = true;
                line.setBuffer(0, Buffer.buffer());
            }
            if (oversized[0]) {
                if (nl >= 0) {
                    answered[0] = true;
                    vertx.cancelTimer(deadline);
                    reply(so, JSON.createObjectNode().put("ok", false).put("error", "request larger than " + MAX_REQUEST
                            + " bytes"));
                }
                return;
            }
            line.appendBuffer(nl < 0 ? chunk : chunk.slice(0, nl));
            if (nl >= 0) {
                answered[0] = true;
                vertx.cancelTimer(deadline);
                so.pause();
                String text = line.toString(StandardCharsets.UTF_8).trim();
                vertx.executeBlocking(() -> answer(text, who), false)
                        .onComplete(r -> reply(so, r.succeeded() ? r.result() : JSON.createObjectNode().put("ok", false)
                                .put("error", "internal error: " + r.cause().getClass().getSimpleName())));
            }
        });
        // A request is a whole line. A client that half-closes instead is closed (Netty does not
        // keep a half-closed connection open to answer it), and nothing it sent is acted on.
    }

    private static int indexOf(Buffer b, byte c) {
        for (int i = 0; i < b.length(); i++) {
            if (b.getByte(i) == c) {
                return i;
            }
        }
        return -1;
    }

    private static void reply(NetSocket so, ObjectNode answer) {
        try {
            so.end(Buffer.buffer(JSON.writeValueAsString(answer) + "\n"));
        } catch (IOException e) {
            so.close();
        }
    }

    /**
     * "uid N" of the peer ({@code SO_PEERCRED} through {@link io.keywarden.daemon.net.ChannelFd});
     * "uid unknown" when the transport does not expose it.
     */
    private static String peer(NetSocket so) {
        return io.keywarden.daemon.net.ChannelFd.peer(so).map(p -> "uid " + p.uid()).orElse("uid unknown");
    }

    private ObjectNode answer(String line, String who) {
        try {
            return answer(JSON.readTree(line), who);
        } catch (IOException | IllegalArgumentException e) {
            return JSON.createObjectNode().put("ok", false).put("error", "bad request: " + e.getMessage());
        }
    }

    private ObjectNode answer(JsonNode req, String who) {
        String op = req.path("op").asText("");
        return switch (op) {
            case "status" -> status();
            case "fleet" -> fleetInventory();
            case "revoke" -> revoke(req, who);
            case "unblock" -> unblock(req, who);
            case "why" -> why(req);
            case "audit-show" -> auditShow(req);
            default -> JSON.createObjectNode().put("ok", false).put("error", "unknown op '" + op + "'");
        };
    }

    private Workload workload(JsonNode req) {
        if (req.hasNonNull("workload")) {
            String name = req.get("workload").asText();
            return policy.get().workload(name).orElseThrow(() -> new IllegalArgumentException("no workload named '" + name
                    + "' in the policy"));
        }
        String id = req.path("spiffe_id").asText("");
        SpiffeId sid = SpiffeId.parse(id);
        Optional<Workload> w = policy.get().workloadBySpiffeId(sid);
        return w.orElseThrow(() -> new IllegalArgumentException("no workload with SPIFFE ID " + id + " in the policy"));
    }

    private ObjectNode status() {
        ObjectNode o = JSON.createObjectNode().put("ok", true);
        info.forEach(o::put);
        ArrayNode arr = o.putArray("leases");
        for (LeaseManager.LeaseView v : leases.view()) {
            ObjectNode l = arr.addObject();
            l.put("workload", v.workload());
            policy.get().workload(v.workload()).ifPresent(w -> l.put("spiffe_id", w.spiffeId().toString()));
            l.put("key", v.key());
            l.put("lease_id", v.leaseId());
            l.put("fingerprint", v.fingerprint());
            l.put("provider_key_id", v.providerKeyId());
            l.put("expires_at", v.expiresAt() == null ? null : KeyFs.rfc3339(v.expiresAt()));
            l.put("provider_expires_at", v.providerExpiresAt() == null ? null : KeyFs.rfc3339(v.providerExpiresAt()));
            l.put("last_refresh", v.lastRefresh() == null ? null : KeyFs.rfc3339(v.lastRefresh()));
            l.put("last_error", v.lastError());
            l.put("openers", v.openers());
        }
        ObjectNode b = o.putObject("blocked");
        leases.blocked().forEach(b::put);
        ArrayNode un = o.putArray("unrevoked");
        for (io.keywarden.daemon.lifecycle.Unrevoked.Entry e : leases.unrevoked().list()) {
            un.addObject().put("workload", e.workload()).put("key", e.key()).put("lease_id", e.leaseId())
                    .put("fingerprint", e.fingerprint()).put("provider_key_id", e.providerKeyId())
                    .put("issuer", e.issuer()).put("attempts", e.attempts()).put("last_error", e.lastError())
                    .put("first_failure", KeyFs.rfc3339(e.firstFailure()))
                    .put("next_try", e.nextTry() == null ? null : KeyFs.rfc3339(e.nextTry()))
                    .put("lease_expires_at", KeyFs.rfc3339(e.leaseEnd()))
                    .put("provider_expires_at", e.providerExpiresAt().map(KeyFs::rfc3339).orElse(null))
                    .put("live_until", KeyFs.rfc3339(e.liveUntil()));
        }
        return o;
    }

    private volatile Why why;

    /** Answers {@code why} with {@code w} (the runtime's identity and policy). */
    public void explainWith(Why w) {
        this.why = w;
    }

    private ObjectNode why(JsonNode req) {
        Why w = why;
        if (w == null) {
            throw new IllegalArgumentException("this daemon does not explain decisions");
        }
        if (req.hasNonNull("pid") == req.hasNonNull("uid")) {
            throw new IllegalArgumentException("why needs a pid or a uid");
        }
        String key = req.hasNonNull("key") ? req.get("key").asText() : null;
        ObjectNode o = w.explain(req.hasNonNull("pid") ? req.get("pid").asInt() : null,
                req.hasNonNull("uid") ? req.get("uid").asLong() : null, key);
        return o.put("ok", true);
    }

    /** The daemon's own ledger, for {@code keywarden audit show} without a FILE; null when it keeps none. */
    private volatile Path ledger;

    public void ledger(Path file) {
        this.ledger = file;
    }

    /** The most text one {@code audit show} answer carries (larger: read the file, {@code audit show FILE}). */
    static final int MAX_SHOW_TEXT = 32 * 1024 * 1024;

    /**
     * {@code keywarden audit show} of this daemon's ledger: verified and filtered here, where the
     * code is warm (a CLI's own JVM spends most of a call starting up), answered as the text the
     * CLI prints. The same {@link io.keywarden.daemon.audit.AuditQuery} as {@code audit show FILE};
     * a ledger that does not verify is refused the same way ({@code broken}).
     */
    private ObjectNode auditShow(JsonNode req) {
        Path file = ledger;
        if (file == null) {
            return JSON.createObjectNode().put("ok", false).put("error", "this daemon keeps no ledger (audit.file is not"
                    + " set)");
        }
        io.keywarden.daemon.audit.AuditQuery q = io.keywarden.daemon.audit.AuditQuery.of(text(req, "spiffe_id"),
                text(req, "key"), text(req, "event"), text(req, "since"), text(req, "until"), text(req, "workload"),
                text(req, "fingerprint"), req.hasNonNull("pid") ? req.get("pid").asLong() : null,
                java.time.Clock.systemUTC());
        java.io.StringWriter out = new java.io.StringWriter();
        try (java.io.PrintWriter w = new java.io.PrintWriter(out)) {
            q.print(file, req.path("json").asBoolean(false), true, w);
        } catch (java.nio.file.NoSuchFileException e) {
            return JSON.createObjectNode().put("ok", false).put("error", "the ledger " + file + " does not exist yet");
        } catch (IOException e) {
            return JSON.createObjectNode().put("ok", false).put("error", "the ledger " + file + " cannot be read: "
                    + e.getMessage());
        } catch (IllegalArgumentException e) {   // does not verify: refused, said
            return JSON.createObjectNode().put("ok", false).put("broken", true).put("error", e.getMessage());
        }
        if (out.getBuffer().length() > MAX_SHOW_TEXT) {
            return JSON.createObjectNode().put("ok", false).put("error", "the answer is larger than " + MAX_SHOW_TEXT
                    / (1024 * 1024) + " MB: narrow it (--workload, --since, …) or read the file: keywarden audit show "
                    + file);
        }
        return JSON.createObjectNode().put("ok", true).put("ledger", file.toString()).put("text", out.toString());
    }

    private static String text(JsonNode req, String field) {
        return req.hasNonNull(field) ? req.get(field).asText() : null;
    }

    private ObjectNode revoke(JsonNode req, String who) {
        Workload w = workload(req);
        String key = req.hasNonNull("key") ? req.get("key").asText() : null;
        if (key != null && !w.grants(key)) {
            throw new IllegalArgumentException("workload " + w.name() + " has no key '" + key + "'");
        }
        String given = req.path("reason").asText("no reason given");
        String reason = "operator (" + who + "): " + given;
        boolean block = req.path("block").asBoolean(false);
        Map<String, Object> f = fields(w, who, given);
        f.put("key", key);
        // Taking access away is never held back by the ledger: record, and act even if recording failed.
        String unrecorded = record(block ? io.keywarden.daemon.audit.LedgerEvent.ADMIN_BLOCK : io.keywarden.daemon.audit.LedgerEvent.ADMIN_REVOKE, f);
        if (block) {
            Optional<String> notPersisted = blocks.block(w.spiffeId().toString(), reason);
            if (notPersisted.isPresent()) {
                unrecorded = (unrecorded == null ? "" : unrecorded + "; ") + notPersisted.get();
            }
        }
        boolean fleetWide = req.path("fleet").asBoolean(false);
        if (block && fleetWide) {
            String notFleet = toFleet(true, fb -> fb.block(w.spiffeId().toString(), reason));
            if (notFleet != null) {
                unrecorded = (unrecorded == null ? "" : unrecorded + "; ") + notFleet;
            }
        }
        int n = leases.revokeNow(w.name(), key, io.keywarden.daemon.lifecycle.RevokeReason.OPERATOR, (block ? "blocked by " : "revoked by ") + reason);
        LOG.warn("{} {} of {}{} ({})", block ? "blocked and revoked" : "revoked", n + " lease(s)", w.name(),
                key == null ? "" : "/" + key, reason);
        ObjectNode o = JSON.createObjectNode().put("ok", true).put("revoked", n).put("blocked", block);
        return unrecorded == null ? o : o.put("warning", unrecorded);
    }

    private ObjectNode unblock(JsonNode req, String who) {
        Workload w = workload(req);
        // Giving access back is recorded first, or not done.
        String unrecorded = record(io.keywarden.daemon.audit.LedgerEvent.ADMIN_UNBLOCK, fields(w, who, req.path("reason").asText("no reason given")));
        if (unrecorded != null) {
            return JSON.createObjectNode().put("ok", false).put("error", "not unblocked: " + unrecorded);
        }
        boolean was;
        try {
            was = blocks.unblock(w.spiffeId().toString());
        } catch (IOException e) {
            return JSON.createObjectNode().put("ok", false).put("error", "not unblocked: the block list cannot be written: "
                    + e.getMessage());
        }
        LOG.warn("unblocked {} by {}", w.name(), who);
        ObjectNode o = JSON.createObjectNode().put("ok", true).put("was_blocked", was);
        String notFleet = toFleet(req.path("fleet").asBoolean(false), f -> f.unblock(w.spiffeId().toString()));
        return notFleet == null ? o : o.put("warning", notFleet);
    }

    private static Map<String, Object> fields(Workload w, String who, String reason) {
        Map<String, Object> f = new java.util.LinkedHashMap<>();
        f.put("workload", w.name());
        f.put("spiffe_id", w.spiffeId().toString());
        f.put("operator", who);
        f.put("reason", reason);
        return f;
    }

    /** Null when recorded, else why not. */
    private String record(io.keywarden.daemon.audit.LedgerEvent event, Map<String, Object> fields) {
        try {
            recorder.record(event, fields);
            return null;
        } catch (RuntimeException e) {
            return "the ledger cannot record it: " + e.getMessage();
        }
    }

    @Override
    public void close() throws IOException {
        NetServer s = server;
        if (s != null) {
            try {
                s.close().await(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                LOG.warn("closing the admin socket failed: {}", e.getMessage());
            }
        }
        Files.deleteIfExists(socket);
    }

    /** One request to the admin socket at {@code socket} (the CLI's side: {@link AdminClient}). */
    public static JsonNode call(Path socket, ObjectNode request) throws IOException {
        return AdminClient.call(socket, request);
    }
}
