package io.keywarden.daemon.fleet;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The fleet's kill switch as one node sees it: publishes this node's blocks and unblocks, hears
 * the others' (and every stored block at each (re)subscription), and orders them: an unblock
 * never lifts a block made after it. A block or unblock made while Redis cannot take it is kept
 * in {@code fleet-pending.json} (0600, replaced atomically; a restart keeps it) and pushed when
 * Redis answers again; an unblock made during a partition is dropped when the fleet blocked the
 * same SPIFFE ID later. What a block does on this node (refusals, revokes, the ledger) is the
 * applier's.
 */
public final class FleetBlockSync {
    private static final Logger LOG = LoggerFactory.getLogger(FleetBlockSync.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A pending entry in the file: the op's fields as {@link FleetRedis#publish} stores them. */
    record Stored(String spiffe_id, String reason, String node, long at) {
    }

    private final FleetRedis redis;
    private final Path pendingFile;
    private final Clock clock;
    private final Executor executor;
    private final Consumer<FleetRedis.Block> applier;
    /** When each SPIFFE ID was last blocked by the fleet: an older unblock never lifts a newer block. */
    private final Map<String, Long> blockedAt = new ConcurrentHashMap<>();
    /** Blocks and unblocks made here while Redis could not take them, the latest per SPIFFE ID. */
    private final Map<String, FleetRedis.Block> pending = new LinkedHashMap<>();

    private FleetBlockSync(FleetRedis redis, Path pendingFile, Clock clock, Executor executor,
                           Consumer<FleetRedis.Block> applier) {
        this.redis = redis;
        this.pendingFile = pendingFile;
        this.clock = clock;
        this.executor = executor;
        this.applier = applier;
    }

    /**
     * Loads what a previous run of this node could not publish ({@code pendingFile}; absent: nothing).
     * A file that cannot be read is an error: a block is never dropped silently.
     */
    public static FleetBlockSync open(FleetRedis redis, Path pendingFile, Clock clock, Executor executor,
                                      Consumer<FleetRedis.Block> applier) throws IOException {
        FleetBlockSync s = new FleetBlockSync(redis, pendingFile, clock, executor, applier);
        io.keywarden.linux.SafePaths.directory(pendingFile.toAbsolutePath().getParent(), io.keywarden.linux.SafePaths.PRIVATE,
                "the fleet's pending blocks " + pendingFile);
        if (Files.exists(pendingFile)) {
            try {
                List<Stored> saved = JSON.readValue(pendingFile.toFile(), new TypeReference<List<Stored>>() {
                });
                for (Stored p : saved) {
                    if (p.spiffe_id() == null || !p.spiffe_id().startsWith("spiffe://")) {
                        throw new IOException("an entry without a SPIFFE ID");
                    }
                    s.pending.put(p.spiffe_id(), new FleetRedis.Block(p.spiffe_id(), p.reason(), p.node(), p.at()));
                    if (p.reason() != null) {
                        s.blockedAt.merge(p.spiffe_id(), p.at(), Math::max);
                    }
                }
            } catch (IOException e) {
                throw new IOException("the fleet's pending blocks " + pendingFile + " cannot be read (" + e.getMessage()
                        + "); fix or remove it: a block not yet published is never dropped silently");
            }
            if (!s.pending.isEmpty()) {
                LOG.warn("fleet: {} block(s)/unblock(s) made before the restart are still to be published",
                        s.pending.size());
            }
        }
        return s;
    }

    /** What waits to be published, by SPIFFE ID (status, tests). */
    public synchronized Map<String, FleetRedis.Block> pending() {
        return Map.copyOf(pending);
    }

    /** Publishes a block ({@code reason} set) or unblock made here; kept (and persisted) when Redis does not take it. */
    public CompletionStage<Void> publish(String spiffeId, String reason) {
        long at = clock.millis();
        if (reason != null) {
            blockedAt.merge(spiffeId, at, Math::max);
        }
        FleetRedis.Block b = new FleetRedis.Block(spiffeId, reason, redis.node(), at);
        return redis.publish(spiffeId, reason, at).whenComplete((v, e) -> {
            if (e != null) {
                keep(b);
                LOG.warn("fleet: the {} of {} is kept to be published when Redis answers again ({})",
                        reason != null ? "block" : "unblock", spiffeId, e.toString());
            } else {
                settled(b, true);
            }
        });
    }

    /** A block or unblock heard on the channel: applied, unless an unblock is older than the block it would lift. */
    public void heard(FleetRedis.Block b) {
        if (b.reason() != null) {
            blockedAt.merge(b.spiffeId(), b.at(), Math::max);
        } else {
            Long last = blockedAt.get(b.spiffeId());
            if (last != null && last > b.at()) {
                LOG.warn("fleet: an unblock of {} older than its block ignored", b.spiffeId());
                return;
            }
        }
        executor.execute(() -> applier.accept(b));
    }

    /** After a (re)subscription: what the fleet holds is applied here, and what this node made meanwhile is pushed. */
    public void resync(Map<String, FleetRedis.Block> held) {
        held.values().forEach(this::heard);
        for (FleetRedis.Block p : pending().values()) {
            FleetRedis.Block stored = held.get(p.spiffeId());
            if (p.reason() == null && stored != null && stored.at() > p.at()) {
                settled(p, false);
                LOG.warn("fleet: this node's unblock of {} made while Redis was away is dropped: the fleet blocked it"
                        + " later", p.spiffeId());
                continue;
            }
            redis.publish(p.spiffeId(), p.reason(), p.at()).whenComplete((v, e) -> {
                if (e == null) {
                    settled(p, false);
                    LOG.warn("fleet: the {} of {} made while Redis was away is published", p.reason() != null ? "block"
                            : "unblock", p.spiffeId());
                }
            });
        }
    }

    private synchronized void keep(FleetRedis.Block b) {
        FleetRedis.Block before = pending.get(b.spiffeId());
        if (before == null || before.at() <= b.at()) {
            pending.put(b.spiffeId(), b);
            save();
        }
    }

    /** {@code b} reached Redis: no longer pending (with {@code any}, whatever was pending for its SPIFFE ID). */
    private synchronized void settled(FleetRedis.Block b, boolean any) {
        FleetRedis.Block now = pending.get(b.spiffeId());
        if (now != null && (any ? now.at() <= b.at() : now.equals(b))) {
            pending.remove(b.spiffeId());
            save();
        }
    }

    private void save() {
        List<Stored> out = pending.values().stream().map(p -> new Stored(p.spiffeId(), p.reason(), p.node(), p.at())).toList();
        try {
            io.keywarden.linux.SafePaths.replaceFile(pendingFile, JSON.writeValueAsBytes(out), "the fleet's pending blocks");
        } catch (IOException e) {
            LOG.warn("fleet: the pending blocks cannot be saved in {} ({}); they are kept in memory until published",
                    pendingFile, e.toString());
        }
    }
}
