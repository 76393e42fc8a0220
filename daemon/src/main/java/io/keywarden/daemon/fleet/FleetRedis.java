package io.keywarden.daemon.fleet;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.redis.client.Command;
import io.vertx.redis.client.Redis;
import io.vertx.redis.client.RedisClientType;
import io.vertx.redis.client.RedisConnection;
import io.vertx.redis.client.RedisOptions;
import io.vertx.redis.client.RedisReplicas;
import io.vertx.redis.client.RedisRole;
import io.vertx.redis.client.Request;
import io.vertx.redis.client.Response;
import io.vertx.redis.client.ResponseType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The fleet's state on Redis, through Vert.x's Redis client on the daemon's Netty: token windows
 * and in-flight reservations per SPIFFE ID (one atomic script each to check-and-reserve and to
 * settle), and the fleet's blocks (a hash, and a channel every node subscribes to).
 *
 * <p>Keys: {@code <prefix>{<spiffe id>}:…} for a workload's windows and reservations (the hash tag
 * keeps one workload's atomic operations in one Cluster slot), {@code <prefix>blocks} and the
 * channel {@code <prefix>blocks} for blocks. Every value read back is checked: a malformed or
 * hostile one (wrong type, not a number, not JSON, huge) is refused with a log line, never lifts a
 * block and never crashes the node. Every operation a request waits for is bounded by
 * {@code fleet.opTimeout}; a failure is reported to the caller, which applies
 * {@code fleet.onUnavailable}.
 *
 * <p>Over 400 lines: one client for four concerns (budgets, history, inventory, blocks) that share
 * its connection, timeouts and checks of what Redis answers.
 */
public final class FleetRedis implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(FleetRedis.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Largest block record accepted from Redis. */
    static final int MAX_BLOCK_JSON = 4096;

    /** One fleet block: who set it, where and when, and why. {@code at} orders a block against an unblock. */
    public record Block(String spiffeId, String reason, String node, long at) {
    }

    private final Vertx vertx;
    private final FleetSettings config;
    private final String node;
    private final Redis client;
    private final String password;
    /** Cluster only: the seed the blocks subscription uses next (any node hears a PUBLISH). */
    private int subscribeSeed;
    private volatile RedisConnection subscriber;
    /** Cluster only: the one-connection client {@link #subscriber} came from. */
    private volatile Redis subscriberClient;
    private volatile boolean closed;
    private volatile boolean up;
    private static final String RESERVE_SHA = sha1(FleetScripts.RESERVE);
    private static final String SETTLE_SHA = sha1(FleetScripts.SETTLE);
    private static final String USAGE_SHA = sha1(FleetScripts.USAGE);

    public FleetRedis(Vertx vertx, FleetSettings config, String node) throws IOException {
        this.vertx = vertx;
        this.config = config;
        this.node = node;
        this.password = config.passwordFile().isPresent()
                ? Files.readString(config.passwordFile().get(), StandardCharsets.UTF_8).strip() : null;
        this.client = Redis.createClient(vertx, options(config.redis()));
    }

    /**
     * The client's options for {@code target}: one server; the master the sentinels name (the client
     * follows a failover); or a Cluster from its seeds (slots learnt from them, MOVED followed, never
     * a replica read). The pool holds one connection per Cluster node at least.
     */
    private RedisOptions options(FleetSettings.RedisTarget target) {
        RedisOptions o = new RedisOptions().setMaxPoolSize(64).setMaxPoolWaiting(4096).setMaxWaitingHandlers(4096);
        switch (target.kind()) {
            case STANDALONE -> o.setType(RedisClientType.STANDALONE);
            case SENTINEL -> o.setType(RedisClientType.SENTINEL).setRole(RedisRole.MASTER).setAutoFailover(true)
                    .setMasterName(target.master().orElseThrow());
            case CLUSTER -> o.setType(RedisClientType.CLUSTER).setUseReplicas(RedisReplicas.NEVER);
            default -> throw new IllegalStateException(target.kind().name());
        }
        target.endpoints().forEach(u -> o.addConnectionString(u.toString()));
        if (config.caFile().isPresent() || target.endpoints().stream().anyMatch(u -> "rediss".equals(u.getScheme()))) {
            // TLS: the server's name (or IP) is checked against its certificate; a private CA from fleet.caFile.
            io.vertx.core.net.NetClientOptions tls = new io.vertx.core.net.NetClientOptions()
                    .setHostnameVerificationAlgorithm("HTTPS");
            config.caFile().ifPresent(ca -> tls.setTrustOptions(new io.vertx.core.net.PemTrustOptions()
                    .addCertPath(ca.toString())));
            o.setNetClientOptions(tls);
        }
        config.user().ifPresent(o::setUser);
        if (password != null) {
            o.setPassword(password);
        }
        return o;
    }

    public String node() {
        return node;
    }

    public FleetSettings config() {
        return config;
    }

    /** Whether the last operation reached Redis. */
    public boolean isUp() {
        return up;
    }

    /**
     * Connects and loads the scripts before the first request needs them (a request must not pay
     * for a connection and two script loads within {@code fleet.opTimeout}).
     */
    public CompletionStage<Void> warm() {
        return timed(client.send(Request.cmd(Command.PING))).andThen(ar -> up = ar.succeeded()).<Void>mapEmpty()
                .toCompletionStage();
    }

    /** The keys of {@code spiffeId}'s windows and reservations; the hour and day are UTC window numbers. */
    List<String> budgetKeys(String spiffeId, long hour, long day) {
        String tag = config.keyPrefix() + "{" + spiffeId + "}:";
        return List.of(tag + "tok:h:" + hour, tag + "tok:d:" + day, tag + "res");
    }

    /** {@link #budgetKeys} and the minute's request count (minute: UTC minute number). */
    List<String> reserveKeys(String spiffeId, long hour, long day, long minute) {
        return List.of(budgetKeys(spiffeId, hour, day).get(0), budgetKeys(spiffeId, hour, day).get(1),
                budgetKeys(spiffeId, hour, day).get(2), config.keyPrefix() + "{" + spiffeId + "}:req:m:" + minute);
    }

    String blocksKey() {
        return config.keyPrefix() + "blocks";
    }

    /**
     * Runs {@code script} by its SHA; a server that does not have it yet (a first call, a restarted
     * server, a Cluster master met for the first time, a promoted replica) gets the text once with
     * EVAL, which also caches it there.
     */
    private Future<Response> eval(String script, String sha, List<String> keys, List<String> args) {
        Future<Response> f = client.send(call(Command.EVALSHA, sha, keys, args)).recover(e -> {
            if (String.valueOf(e.getMessage()).startsWith("NOSCRIPT")) {
                return client.send(call(Command.EVAL, script, keys, args));
            }
            return Future.failedFuture(e);
        });
        return timed(f);
    }

    static String sha1(String script) {
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-1")
                    .digest(script.getBytes(StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Request call(Command c, String sha, List<String> keys, List<String> args) {
        Request r = Request.cmd(c).arg(sha).arg(keys.size());
        keys.forEach(r::arg);
        args.forEach(r::arg);
        return r;
    }

    private <T> Future<T> timed(Future<T> f) {
        return f.timeout(config.opTimeout().toMillis(), TimeUnit.MILLISECONDS).andThen(ar -> {
            if (ar.succeeded() != up) {
                up = ar.succeeded();
                if (up) {
                    LOG.info("fleet: Redis {} reachable", config.redis());
                } else {
                    LOG.warn("fleet: Redis {} unreachable: {}", config.redis(), ar.cause().toString());
                }
            }
        });
    }

    /** The answer of the reserve script: admitted, which window refused, its use and what is reserved fleet-wide. */
    public record ReserveAnswer(boolean admitted, String window, long used, long reserved) {
    }

    /** Check-and-reserve {@code need} tokens for {@code spiffeId} as reservation {@code id}; limits -1 when absent. */
    public CompletionStage<ReserveAnswer> reserve(String spiffeId, long hour, long day, long need, long hourLimit,
                                                  long dayLimit, String id, long lifetimeMillis, long nowMillis) {
        return reserve(spiffeId, hour, day, need, hourLimit, dayLimit, -1, id, lifetimeMillis, nowMillis);
    }

    /** {@link #reserve}, counting the request against {@code perMinute} requests of the fleet (-1: none). */
    public CompletionStage<ReserveAnswer> reserve(String spiffeId, long hour, long day, long need, long hourLimit,
                                                  long dayLimit, long perMinute, String id, long lifetimeMillis,
                                                  long nowMillis) {
        List<String> args = List.of(Long.toString(nowMillis), Long.toString(need), Long.toString(hourLimit),
                Long.toString(dayLimit), id, Long.toString(lifetimeMillis), Long.toString(perMinute));
        return eval(FleetScripts.RESERVE, RESERVE_SHA, reserveKeys(spiffeId, hour, day, nowMillis / 60_000), args).map(r -> {
            if (r == null || r.type() != ResponseType.MULTI || r.size() != 4) {
                throw new IllegalStateException("the reserve script answered " + (r == null ? "nothing" : r.type()));
            }
            return new ReserveAnswer(r.get(0).toLong() == 1, r.get(1).toString(), r.get(2).toLong(), r.get(3).toLong());
        }).toCompletionStage();
    }

    /** The hour's and the day's fleet-wide totals after a settle or a late count. */
    public record Totals(long hour, long day) {
    }

    /**
     * Replaces reservation {@code id} (may be empty) by {@code tokens} used in the windows it settles
     * in; the workload's history keeps {@code keepHours} hours (its anomaly baseline's).
     */
    public CompletionStage<Totals> settle(String spiffeId, long hour, long day, String id, long tokens, int keepHours) {
        List<String> keys = new ArrayList<>(budgetKeys(spiffeId, hour, day));
        keys.add(historyKey(spiffeId));
        List<String> args = List.of(id == null ? "" : id, Long.toString(Math.max(0, tokens)), Long.toString(hour),
                Long.toString(keepHours));
        return eval(FleetScripts.SETTLE, SETTLE_SHA, keys, args).map(r -> {
            if (r == null || r.type() != ResponseType.MULTI || r.size() != 2) {
                throw new IllegalStateException("the settle script answered " + (r == null ? "nothing" : r.type()));
            }
            return new Totals(r.get(0).toLong(), r.get(1).toLong());
        }).toCompletionStage();
    }

    /** What {@link #countSlot} counted now, and the totals after it. */
    public record SlotCount(long in, long out, long requests, Totals totals) {
    }

    /**
     * A late sensor's totals so far for {@code slot} (one bucket of one provider key): what grew
     * since any node last reported it is counted in the windows, once for the fleet.
     */
    public CompletionStage<SlotCount> countSlot(String spiffeId, long hour, long day, String slot, long in, long out,
                                                long requests, int keepHours) {
        List<String> b = budgetKeys(spiffeId, hour, day);
        List<String> keys = List.of(b.get(0), b.get(1), historyKey(spiffeId), config.keyPrefix() + "{" + spiffeId + "}:slots");
        List<String> args = List.of(slot, Long.toString(in), Long.toString(out), Long.toString(requests), Long.toString(hour),
                Long.toString(keepHours));
        return eval(FleetScripts.USAGE, USAGE_SHA, keys, args).map(r -> {
            if (r == null || r.type() != ResponseType.MULTI || r.size() != 5) {
                throw new IllegalStateException("the usage script answered " + (r == null ? "nothing" : r.type()));
            }
            return new SlotCount(r.get(0).toLong(), r.get(1).toLong(), r.get(2).toLong(),
                    new Totals(r.get(3).toLong(), r.get(4).toLong()));
        }).toCompletionStage();
    }

    String historyKey(String spiffeId) {
        return config.keyPrefix() + "{" + spiffeId + "}:hist";
    }

    /** A workload's fleet-wide baseline for {@code hour}: its complete hours in the last {@code hours}, and their tokens. */
    public record Baseline(int hours, long tokens) {
        public double mean() {
            return hours == 0 ? 0 : (double) tokens / hours;
        }
    }

    /**
     * The complete hours before {@code hour} (at most {@code hours}, none before the fleet first
     * counted the workload; an hour without use counts as zero) and their tokens. Malformed values
     * count as zero.
     */
    public CompletionStage<Baseline> baseline(String spiffeId, long hour, int hours) {
        Request get = Request.cmd(Command.HMGET).arg(historyKey(spiffeId)).arg("first");
        for (int i = 1; i <= hours; i++) {
            get.arg(Long.toString(hour - i));
        }
        return timed(client.send(get)).map(r -> {
            if (r == null || r.type() != ResponseType.MULTI || r.size() != hours + 1) {
                return new Baseline(0, 0);
            }
            long first = number(r.get(0), hour);
            int n = 0;
            long sum = 0;
            for (int i = 1; i <= hours && hour - i >= first; i++) {
                n++;
                sum += Math.max(0, number(r.get(i), 0));
            }
            return new Baseline(n, sum);
        }).toCompletionStage();
    }

    private static long number(Response v, long dflt) {
        if (v == null) {
            return dflt;
        }
        try {
            return Long.parseLong(v.toString());
        } catch (NumberFormatException e) {
            return dflt;
        }
    }

    /**
     * Claims the breach {@code kind} of {@code spiffeId} in {@code window} for this node: true for
     * the first node to ask (which acts on it), false for every other (the fleet acts once).
     */
    public CompletionStage<Boolean> claimBreach(String spiffeId, String kind, long window) {
        return timed(client.send(Request.cmd(Command.SET).arg(config.keyPrefix() + "{" + spiffeId + "}:fired:" + kind + ":"
                + window).arg(node).arg("NX").arg("EX").arg(172_800))).map(r -> r != null && "OK".equals(r.toString()))
                .toCompletionStage();
    }

    // ---- inventory ----

    /**
     * This node's entry: {@code status} (its leases, never secrets: what {@code keywarden status}
     * shows) with the time, stored with a lifetime of three heartbeats, and its name in the set of
     * nodes.
     */
    public CompletionStage<Void> heartbeat(ObjectNode status, long nowMillis) {
        status.put("node", node).put("heartbeat_at", nowMillis);
        long ttl = config.heartbeat().toMillis() * 3;
        return timed(client.send(Request.cmd(Command.SET).arg(config.keyPrefix() + "node:" + node).arg(status.toString())
                .arg("PX").arg(ttl)).compose(v -> client.send(Request.cmd(Command.SADD).arg(config.keyPrefix() + "nodes")
                .arg(node)))).<Void>mapEmpty().toCompletionStage();
    }

    /**
     * Every node that ever joined: its last entry, or {@code {"node":N,"stale":true}} for one whose
     * entry expired (silent for three heartbeats) or cannot be read.
     */
    public CompletionStage<List<ObjectNode>> inventory() {
        return timed(client.send(Request.cmd(Command.SMEMBERS).arg(config.keyPrefix() + "nodes")).compose(members -> {
            List<String> names = new ArrayList<>();
            if (members != null) {
                for (Response m : members) {
                    names.add(m.toString());
                }
            }
            java.util.Collections.sort(names);
            if (names.isEmpty()) {
                return Future.succeededFuture(List.<ObjectNode>of());
            }
            Request get = Request.cmd(Command.MGET);
            names.forEach(n -> get.arg(config.keyPrefix() + "node:" + n));
            return client.send(get).map(values -> {
                List<ObjectNode> out = new ArrayList<>();
                for (int i = 0; i < names.size(); i++) {
                    Response v = values == null ? null : values.get(i);
                    ObjectNode entry = null;
                    if (v != null && v.toString().length() <= (1 << 22)) {
                        try {
                            JsonNode n = JSON.readTree(v.toString());
                            entry = n instanceof ObjectNode o ? o : null;
                        } catch (IOException e) {
                            LOG.warn("fleet: the inventory entry of node {} is not JSON", names.get(i));
                        }
                    }
                    long age = entry == null ? Long.MAX_VALUE
                            : System.currentTimeMillis() - entry.path("heartbeat_at").asLong(0);
                    if (entry == null) {
                        entry = JSON.createObjectNode().put("node", names.get(i));
                    }
                    entry.put("stale", age > config.heartbeat().toMillis() * 3);
                    out.add(entry);
                }
                return out;
            });
        })).toCompletionStage();
    }

    // ---- blocks ----

    /** Stores and publishes a block (or, with {@code reason} null, an unblock) of {@code spiffeId}. */
    public CompletionStage<Void> publish(String spiffeId, String reason, long at) {
        ObjectNode o = JSON.createObjectNode().put("spiffe_id", spiffeId).put("node", node).put("at", at);
        if (reason != null) {
            o.put("op", "block").put("reason", reason);
        } else {
            o.put("op", "unblock");
        }
        String text = o.toString();
        Request store = reason != null ? Request.cmd(Command.HSET).arg(blocksKey()).arg(spiffeId).arg(text)
                : Request.cmd(Command.HDEL).arg(blocksKey()).arg(spiffeId);
        return timed(client.send(store).compose(v -> client.send(Request.cmd(Command.PUBLISH).arg(blocksKey()).arg(text))))
                .<Void>mapEmpty().toCompletionStage();
    }

    /** Every block stored in Redis, malformed entries left out (each with a log line). */
    public CompletionStage<Map<String, Block>> blocks() {
        return timed(client.send(Request.cmd(Command.HGETALL).arg(blocksKey()))).map(r -> {
            Map<String, Block> out = new LinkedHashMap<>();
            if (r == null) {
                return out;
            }
            List<String> flat = new ArrayList<>();
            if (r.isMap()) {
                for (String k : r.getKeys()) {
                    flat.add(k);
                    flat.add(String.valueOf(r.get(k)));
                }
            } else if (r.type() == ResponseType.MULTI) {
                for (int i = 0; i < r.size(); i++) {
                    flat.add(String.valueOf(r.get(i)));
                }
            }
            for (int i = 0; i + 1 < flat.size(); i += 2) {
                parse(flat.get(i + 1)).filter(b -> b.reason() != null).ifPresent(b -> out.put(b.spiffeId(), b));
            }
            return out;
        }).toCompletionStage();
    }

    /** A block or unblock message as stored or published; empty (with a log line) when malformed. */
    static java.util.Optional<Block> parse(String text) {
        if (text == null || text.length() > MAX_BLOCK_JSON) {
            LOG.warn("fleet: a block record of {} characters refused", text == null ? 0 : text.length());
            return java.util.Optional.empty();
        }
        try {
            JsonNode n = JSON.readTree(text);
            String id = n.path("spiffe_id").asText("");
            String op = n.path("op").asText("");
            if (!id.startsWith("spiffe://") || !(op.equals("block") || op.equals("unblock")) || !n.path("at").canConvertToLong()) {
                LOG.warn("fleet: a malformed block record refused");
                return java.util.Optional.empty();
            }
            return java.util.Optional.of(new Block(id, op.equals("block") ? n.path("reason").asText("fleet block") : null,
                    n.path("node").asText("?"), n.path("at").asLong()));
        } catch (IOException e) {
            LOG.warn("fleet: a block record that is not JSON refused");
            return java.util.Optional.empty();
        }
    }

    /**
     * Subscribes to the blocks channel; {@code onMessage} gets each block (reason set) or unblock
     * (reason null). {@code onConnected} runs after each (re)subscription, to resynchronise from the
     * stored blocks. Reconnects every second while Redis is away.
     */
    public void subscribe(BiConsumer<Block, Boolean> onMessage, Runnable onConnected) {
        if (closed) {
            return;
        }
        subscriberConnection().onSuccess(conn -> {
            subscriber = conn;
            conn.handler(msg -> {
                if (msg != null && (msg.type() == ResponseType.PUSH || msg.type() == ResponseType.MULTI) && msg.size() >= 3
                        && "message".equals(msg.get(0).toString())) {
                    parse(msg.get(2).toString()).ifPresent(b -> onMessage.accept(b, false));
                }
            });
            Runnable again = () -> {
                subscriber = null;
                closeSubscriberClient();
                if (!closed) {
                    LOG.warn("fleet: lost the blocks subscription; resubscribing");
                    vertx.setTimer(1000, t -> subscribe(onMessage, onConnected));
                }
            };
            conn.exceptionHandler(e -> conn.close());
            conn.endHandler(v -> again.run());
            conn.send(Request.cmd(Command.SUBSCRIBE).arg(blocksKey())).onSuccess(v -> {
                up = true;
                onConnected.run();
            }).onFailure(e -> conn.close());
        }).onFailure(e -> {
            if (up) {
                up = false;
            }
            LOG.warn("fleet: cannot subscribe to {} ({}); retrying", config.redis(), e.toString());
            if (!closed) {
                vertx.setTimer(1000, t -> subscribe(onMessage, onConnected));
            }
        });
    }

    /**
     * The connection the blocks channel is heard on: the pool's for one server or Sentinel's master;
     * for a Cluster, a plain connection to one seed after another (a PUBLISH reaches every node of a
     * Cluster, so any that answers will do; the next seed is tried when it goes away).
     */
    private Future<RedisConnection> subscriberConnection() {
        if (config.redis().kind() != FleetSettings.RedisKind.CLUSTER) {
            return client.connect();
        }
        List<java.net.URI> seeds = config.redis().endpoints();
        java.net.URI seed = seeds.get(Math.floorMod(subscribeSeed++, seeds.size()));
        Redis one = Redis.createClient(vertx, options(FleetSettings.RedisTarget.standalone(seed)).setMaxPoolSize(1));
        subscriberClient = one;
        return one.connect().andThen(ar -> {
            if (ar.failed()) {
                one.close();
            }
        });
    }

    private void closeSubscriberClient() {
        Redis one = subscriberClient;
        subscriberClient = null;
        if (one != null) {
            one.close();
        }
    }

    @Override
    public void close() {
        closed = true;
        RedisConnection s = subscriber;
        if (s != null) {
            s.close();
        }
        closeSubscriberClient();
        client.close();
    }
}
