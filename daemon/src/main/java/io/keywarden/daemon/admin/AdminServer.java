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
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin API on a Unix socket (mode 0600, in a 0700 directory): one JSON request line, one
 * JSON answer line. {@code status} (never secrets), {@code revoke} (optionally {@code block}),
 * {@code unblock}. The caller's uid (SO_PEERCRED) goes into the ledger with the reason.
 *
 * <p>Each connection has its own thread (at most {@link #MAX_CLIENTS} at once; more are refused at
 * once) and {@link #READ_TIMEOUT} to send its request line of at most {@link #MAX_REQUEST} bytes,
 * so an idle or slow client never delays the kill switch of another.
 */
public final class AdminServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(AdminServer.class);
    static final ObjectMapper JSON = new ObjectMapper();
    static final int MAX_REQUEST = 64 * 1024;
    static final int MAX_CLIENTS = 64;
    static final java.time.Duration READ_TIMEOUT = java.time.Duration.ofSeconds(2);

    private final java.util.concurrent.Semaphore slots = new java.util.concurrent.Semaphore(MAX_CLIENTS);
    private final java.util.concurrent.ScheduledExecutorService deadlines =
            java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "keywarden-admin-deadlines");
                t.setDaemon(true);
                return t;
            });

    private final Path socket;
    private final ServerSocketChannel server;
    private final LeaseManager leases;
    private final Supplier<Policy> policy;
    private final Map<String, String> info;
    private final Blocks blocks;
    private final Recorder recorder;
    private final Thread thread;
    private volatile boolean closed;

    /** Writes an operator action to the ledger before it takes effect; throws when it cannot. */
    @FunctionalInterface
    public interface Recorder {
        void record(String event, Map<String, Object> fields);
    }

    private AdminServer(Path socket, ServerSocketChannel server, LeaseManager leases, Supplier<Policy> policy,
                        Map<String, String> info, Blocks blocks, Recorder recorder) {
        this.socket = socket;
        this.server = server;
        this.leases = leases;
        this.policy = policy;
        this.info = info;
        this.blocks = blocks;
        this.recorder = recorder;
        this.thread = new Thread(this::serve, "keywarden-admin");
        this.thread.setDaemon(true);
    }

    public static AdminServer start(Path socket, LeaseManager leases, Supplier<Policy> policy, Map<String, String> info,
                                    Blocks blocks, Recorder recorder) throws IOException {
        Path dir = socket.toAbsolutePath().getParent();
        if (!Files.isDirectory(dir)) {
            Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        }
        Files.deleteIfExists(socket);
        ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        ch.bind(UnixDomainSocketAddress.of(socket));
        Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
        AdminServer s = new AdminServer(socket, ch, leases, policy, info, blocks, recorder);
        s.thread.start();
        return s;
    }

    private void serve() {
        while (!closed) {
            SocketChannel c;
            try {
                c = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    LOG.warn("admin socket accept failed: {}", e.getMessage());
                }
                continue;
            }
            if (!slots.tryAcquire()) {
                LOG.warn("admin API: {} clients already connected; refusing another", MAX_CLIENTS);
                closeQuietly(c);
                continue;
            }
            Thread t = new Thread(() -> {
                try (c) {
                    handle(c);
                } catch (IOException e) {
                    if (!closed) {
                        LOG.warn("admin request failed: {}", e.getMessage());
                    }
                } finally {
                    slots.release();
                }
            }, "keywarden-admin-client");
            t.setDaemon(true);
            t.start();
        }
    }

    private static void closeQuietly(SocketChannel c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // Nothing to tell a client we are hanging up on.
        }
    }

    private void handle(SocketChannel c) throws IOException {
        UnixDomainPrincipal peer = c.getOption(ExtendedSocketOptions.SO_PEERCRED);
        String who = "uid " + peer.user().getName();
        ByteBuffer buf = ByteBuffer.allocate(MAX_REQUEST);
        // Closing the channel ends a blocked read: that is the per-connection read timeout.
        var deadline = deadlines.schedule(() -> closeQuietly(c), READ_TIMEOUT.toMillis(),
                java.util.concurrent.TimeUnit.MILLISECONDS);
        boolean complete = false;
        try {
            while (buf.hasRemaining() && c.read(buf) > 0) {
                if (buf.get(buf.position() - 1) == '\n') {
                    complete = true;
                    break;
                }
            }
        } catch (java.nio.channels.AsynchronousCloseException e) {
            LOG.warn("admin client ({}) sent no complete request within {} s; dropped", who, READ_TIMEOUT.toSeconds());
            return;
        } finally {
            deadline.cancel(false);
        }
        ObjectNode answer;
        if (!complete && !buf.hasRemaining()) {
            answer = JSON.createObjectNode().put("ok", false).put("error", "request larger than " + MAX_REQUEST + " bytes");
        } else {
            String line = new String(buf.array(), 0, buf.position(), StandardCharsets.UTF_8).trim();
            try {
                answer = answer(JSON.readTree(line), who);
            } catch (IOException | IllegalArgumentException e) {
                answer = JSON.createObjectNode().put("ok", false).put("error", "bad request: " + e.getMessage());
            }
        }
        ByteBuffer out = ByteBuffer.wrap((JSON.writeValueAsString(answer) + "\n").getBytes(StandardCharsets.UTF_8));
        while (out.hasRemaining()) {
            c.write(out);
        }
    }

    private ObjectNode answer(JsonNode req, String who) {
        String op = req.path("op").asText("");
        return switch (op) {
            case "status" -> status();
            case "revoke" -> revoke(req, who);
            case "unblock" -> unblock(req, who);
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
            l.put("last_refresh", v.lastRefresh() == null ? null : KeyFs.rfc3339(v.lastRefresh()));
            l.put("last_error", v.lastError());
            l.put("openers", v.openers());
        }
        ObjectNode b = o.putObject("blocked");
        leases.blocked().forEach(b::put);
        return o;
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
        String unrecorded = record(block ? "admin.block" : "admin.revoke", f);
        if (block) {
            try {
                blocks.put(w.spiffeId().toString(), reason);
            } catch (IOException e) {
                unrecorded = (unrecorded == null ? "" : unrecorded + "; ") + "the block is not persisted: " + e.getMessage();
            }
            leases.block(w.name(), reason);
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
        String unrecorded = record("admin.unblock", fields(w, who, req.path("reason").asText("no reason given")));
        if (unrecorded != null) {
            return JSON.createObjectNode().put("ok", false).put("error", "not unblocked: " + unrecorded);
        }
        boolean was;
        try {
            was = blocks.remove(w.spiffeId().toString());
        } catch (IOException e) {
            return JSON.createObjectNode().put("ok", false).put("error", "not unblocked: the block list cannot be written: "
                    + e.getMessage());
        }
        was |= leases.unblock(w.name());
        LOG.warn("unblocked {} by {}", w.name(), who);
        return JSON.createObjectNode().put("ok", true).put("was_blocked", was);
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
    private String record(String event, Map<String, Object> fields) {
        try {
            recorder.record(event, fields);
            return null;
        } catch (RuntimeException e) {
            return "the ledger cannot record it: " + e.getMessage();
        }
    }

    @Override
    public void close() throws IOException {
        closed = true;
        deadlines.shutdownNow();
        server.close();
        Files.deleteIfExists(socket);
    }

    /** The client side, for the CLI: one request, one answer. */
    public static JsonNode call(Path socket, ObjectNode request) throws IOException {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            c.write(ByteBuffer.wrap((JSON.writeValueAsString(request) + "\n").getBytes(StandardCharsets.UTF_8)));
            c.shutdownOutput();
            return JSON.readTree(Channels.newInputStream(c));
        }
    }
}
