package io.keywarden.daemon.runtime;

import io.keywarden.daemon.fleet.FleetSettings;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.keywarden.daemon.admin.AdminServer;
import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.fleet.FleetBlockSync;
import io.keywarden.daemon.fleet.FleetRedis;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.daemon.lifecycle.SystemScheduler;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.policy.Policy;
import io.keywarden.policy.SpiffeId;
import io.keywarden.policy.Workload;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * This node's part in the fleet (the config's {@code fleet:}): its Redis client and kill switch,
 * made before the guard (which reserves through them), then joined once the admin API serves: the
 * admin's {@code --fleet} operations and {@code fleet status}, the inventory heartbeat, what
 * {@code /readyz} says while Redis is away, and the blocks channel: every block and unblock heard,
 * once {@link FleetBlockSync} ordered it, is applied here as an operator's would be (refusals,
 * revokes, a ledger record).
 */
final class FleetAssembly {
    private static final Logger LOG = LoggerFactory.getLogger(FleetAssembly.class);

    private final FleetRedis redis;
    private final FleetBlockSync blocks;
    private final Clock clock;
    private final SystemScheduler scheduler;

    /** What a fleet block acts on here; the blocks and leases exist once the runtime made them. */
    record Local(Supplier<Policy> policy, Supplier<io.keywarden.daemon.blocks.BlockList> blocks, Supplier<LeaseManager> leases, AuditTrail audit) {
    }

    private FleetAssembly(FleetRedis redis, FleetBlockSync blocks, Clock clock, SystemScheduler scheduler) {
        this.redis = redis;
        this.blocks = blocks;
        this.clock = clock;
        this.scheduler = scheduler;
    }

    /** Connects (waiting up to 5 s: a first request should not pay for it) and loads what waits to be published. */
    static FleetAssembly start(Vertx vertx, FleetSettings config, String node, Path pendingFile, Clock clock,
                               SystemScheduler scheduler, Metrics metrics, Components components, Local local)
            throws IOException {
        FleetRedis f = new FleetRedis(vertx, config, node);
        components.add(Component.of("fleet", f));
        FleetBlockSync sync = FleetBlockSync.open(f, pendingFile, clock, scheduler::execute, b -> apply(local, b));
        metrics.fleetUp(f::isUp, config.onUnavailable() == FleetSettings.Unavailable.LOCAL);
        try {
            f.warm().toCompletableFuture().get(5, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
            LOG.warn("fleet: Redis {} does not answer yet ({}); guarded requests follow fleet.onUnavailable ({}) until"
                    + " it does", config.redis(), e.getCause() == null ? e : e.getCause(), label(config));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return new FleetAssembly(f, sync, clock, scheduler);
    }

    FleetRedis redis() {
        return redis;
    }

    FleetBlockSync blocks() {
        return blocks;
    }

    private static String label(FleetSettings c) {
        return c.onUnavailable().name().toLowerCase(Locale.ROOT);
    }

    /**
     * Joins: the admin API's fleet operations and the inventory heartbeat ({@code status}: this
     * node's leases, never a key) when there is an admin API, {@code /readyz}'s word on a node
     * deciding alone, and the blocks channel.
     */
    void join(AdminServer admin, Readiness readiness, Supplier<ObjectNode> status) {
        if (admin != null) {
            admin.fleet(new AdminServer.FleetBlocks() {
                @Override
                public CompletionStage<Void> block(String spiffeId, String reason) {
                    return blocks.publish(spiffeId, reason);
                }

                @Override
                public CompletionStage<Void> unblock(String spiffeId) {
                    return blocks.publish(spiffeId, null);
                }

                @Override
                public CompletionStage<List<ObjectNode>> inventory() {
                    return redis.inventory();
                }
            });
            Runnable beat = () -> redis.heartbeat(status.get(), clock.millis()).whenComplete((v, e) -> {
                if (e != null) {
                    LOG.debug("fleet: heartbeat not stored: {}", e.toString());
                }
            });
            beat.run();
            scheduler.every(clock, redis.config().heartbeat(), beat);
        }
        // Ready either way (opens never depend on Redis), but /readyz says how this node decides meanwhile.
        String alone = redis.config().onUnavailable() == FleetSettings.Unavailable.LOCAL
                ? "Redis does not answer: this node enforces token budgets and requests per minute on its own counts"
                        + " (fleet.onUnavailable: local); blocks set elsewhere meanwhile do not reach it"
                : "Redis does not answer: guarded gateway requests are refused with 503 fleet_unavailable"
                        + " (fleet.onUnavailable: closed); blocks set elsewhere meanwhile do not reach it";
        scheduler.every(clock, Duration.ofSeconds(1), () -> {
            if (redis.isUp()) {
                readiness.notDegraded("fleet");
            } else {
                readiness.degraded("fleet", alone);
            }
        });
        redis.subscribe((b, stored) -> blocks.heard(b), () -> redis.blocks().whenComplete((all, e) -> {
            if (e != null) {
                LOG.warn("fleet: the stored blocks cannot be read: {}", e.toString());
                return;
            }
            blocks.resync(all);
        }));
        LOG.info("fleet: node {} on {} (blocks and token budgets across nodes; onUnavailable {})", redis.node(),
                redis.config().redis(), label(redis.config()));
    }

    /**
     * One fleet block (reason set) or unblock (reason null), applied here as an operator's would be
     * (ordered by {@link io.keywarden.daemon.fleet.FleetBlockSync} first).
     */
    private static void apply(Local local, FleetRedis.Block b) {
        Policy p = local.policy().get();
        var w = p.workloadBySpiffeId(SpiffeId.parse(b.spiffeId()));
        io.keywarden.daemon.blocks.BlockList bl = local.blocks().get();
        String reason = "fleet: " + b.reason() + " (from node " + b.node() + ")";
        Map<String, Object> f = new java.util.LinkedHashMap<>();
        f.put("spiffe_id", b.spiffeId());
        f.put("workload", w.map(Workload::name).orElse(null));
        f.put("from_node", b.node());
        f.put("at", java.time.Instant.ofEpochMilli(b.at()).toString());
        try {
            if (b.reason() != null) {
                if (bl == null || bl.reason(b.spiffeId()).map(reason::equals).orElse(false)) {
                    return;
                }
                f.put("reason", b.reason());
                local.audit().record(io.keywarden.daemon.audit.LedgerEvent.FLEET_BLOCK_APPLIED, f);
                bl.block(b.spiffeId(), reason).ifPresent(why -> LOG.warn("fleet: {}: {}", b.spiffeId(), why));
                if (w.isPresent() && local.leases().get() != null) {
                    local.leases().get().revokeNow(w.get().name(), null, io.keywarden.daemon.lifecycle.RevokeReason.OPERATOR,
                            "blocked by " + reason);
                }
                LOG.warn("fleet: {} blocked here by node {}: {}", b.spiffeId(), b.node(), b.reason());
            } else {
                if (bl == null || bl.reason(b.spiffeId()).isEmpty()) {
                    return;
                }
                local.audit().record(io.keywarden.daemon.audit.LedgerEvent.FLEET_UNBLOCK_APPLIED, f);
                bl.unblock(b.spiffeId());
                LOG.warn("fleet: {} unblocked here by node {}", b.spiffeId(), b.node());
            }
        } catch (IOException | RuntimeException e) {
            LOG.warn("fleet: {} of {} not applied here: {}", b.reason() != null ? "block" : "unblock", b.spiffeId(),
                    e.toString());
        }
    }
}
