package io.keywarden.daemon.runtime;

import io.keywarden.daemon.guard.UsageApiSettings;
import io.keywarden.daemon.gateway.GatewaySettings;
import io.keywarden.daemon.InputProblem;
import io.keywarden.daemon.blocks.BlockList;
import io.keywarden.daemon.fleet.FleetBudgets;
import io.keywarden.daemon.gateway.GatewayServer;
import io.keywarden.daemon.guard.GatewayTally;
import io.keywarden.daemon.guard.GuardEngine;
import io.keywarden.daemon.guard.GuardState;
import io.keywarden.daemon.guard.TokenBudgets;
import io.keywarden.daemon.guard.UsageApiSensor;
import io.keywarden.daemon.hook.PolicyHook;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.delivery.AccessDecider;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.policy.Guard;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The spend guard (always: the usage-API sensor and the gateway feed it) with its state file
 * ({@code guard-state.json}, saved every 30 s and at stop), the usage-API sensor when configured,
 * and the gateway when the config has one; with a fleet, budgets are decided on the fleet's counts.
 */
final class GuardAssembly {
    private static final Logger LOG = LoggerFactory.getLogger(GuardAssembly.class);

    private final Core core;
    private final GuardEngine engine;

    private GuardAssembly(Core core, GuardEngine engine) {
        this.core = core;
        this.engine = engine;
    }

    /** What the gateway serves with: the access core, its attestation pool, the issuers and the policy hook (null: no gateway). */
    record GatewayParts(io.vertx.core.Vertx vertx, AccessDecider access, ExecutorService attestPool,
                        IssuerRegistry issuers, PolicyHook hook) {
    }

    static GuardAssembly start(Core core, Supplier<LeaseManager> leases, BlockList blocks, FleetAssembly fleet,
                               GatewayParts gateway) throws IOException {
        Spec s = core.spec();
        Path stateFile = core.stateFile("guard-state.json");
        GuardRecorder recorder = new GuardRecorder(core.audit(), core.metrics(), leases, () -> blocks, core.policy(),
                core.scheduler(), core.clock());
        GuardEngine engine = new GuardEngine(core.clock(), recorder);
        try {
            engine.restore(GuardState.load(stateFile));
        } catch (IOException e) {
            throw new InputProblem("keywarden: " + e.getMessage(), e);
        }
        recorder.resume();
        if (fleet != null) {
            recorder.fleet(fleet.blocks()::publish);
        }
        GuardAssembly g = new GuardAssembly(core, engine);
        g.meters(core.policy().get());
        Runnable save = () -> {
            try {
                GuardState.save(stateFile, engine.export());
            } catch (IOException e) {
                LOG.warn("guard state not saved to {}: {}", stateFile, e.getMessage());
            }
        };
        var usageFlush = core.scheduler().every(core.clock(), Duration.ofSeconds(5), engine::flushUsage);
        var saving = core.scheduler().every(core.clock(), Duration.ofSeconds(30), save);
        core.components().add("guard", () -> {
            usageFlush.cancel();
            saving.cancel();
            engine.flushUsage(true);
            save.run();
        });
        GatewayTally tally = new GatewayTally();
        // With a fleet, budgets, requests per minute and the anomaly rule are decided on the fleet's counts.
        FleetBudgets fleetBudgets = fleet == null ? null : new FleetBudgets(fleet.redis(), engine, core.clock(),
                s.extensions().gateway().map(GatewaySettings::timeout).orElse(Duration.ofMinutes(1)), core.metrics());
        if (s.extensions().usage().isPresent()) {
            UsageApiSettings u = s.extensions().usage().get();
            UsageApiSensor sensor = new UsageApiSensor(u, engine, () -> leases.get().view(), core.policy(), tally,
                    core.metrics(), core.clock(), fleetBudgets);
            var polling = core.scheduler().every(core.clock(), u.interval(), sensor::poll);
            core.components().add("usage sensor", polling::cancel);
            LOG.info("usage sensor: polling {} every {} s", u.url().getHost(), u.interval().toSeconds());
        }
        if (gateway != null) {
            GatewaySettings gw = s.extensions().gateway().orElseThrow();
            TokenBudgets budgets = fleetBudgets == null ? engine : fleetBudgets;
            core.components().add("gateway", GatewayServer.start(gateway.vertx(), gw, gateway.access(), core.policy(),
                    k -> upstreamOf(gw, gateway.issuers(), k), engine, budgets, tally, gateway.hook(), core.metrics(),
                    gateway.attestPool(), s.tuning().gatewayLoops(), mtlsIdentity(core, gw)));
        }
        return g;
    }

    /** The gateway's own X.509-SVID for mTLS callers, when configured: waited for up to 10 s, then served when it comes. */
    private static io.keywarden.attestation.spire.X509SvidSource mtlsIdentity(Core core, GatewaySettings gw) {
        if (gw.mtls().isEmpty()) {
            return null;
        }
        var src = new io.keywarden.attestation.spire.X509SvidSource(gw.mtls().get().workloadApi());
        core.components().add(Component.of("gateway mTLS identity", src, src::unavailable));
        try {
            if (!src.awaitFirst(Duration.ofSeconds(10))) {
                LOG.warn("gateway mTLS: no X.509-SVID from {} yet ({}); handshakes fail until one arrives",
                        gw.mtls().get().workloadApi(), src.unavailable().orElse(""));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return src;
    }

    /** Breach counters at zero for every guarded workload; counters of workloads gone from the policy are dropped. */
    void meters(Policy p) {
        for (Workload w : p.workloads()) {
            if (!w.guard().equals(Guard.NONE)) {
                core.metrics().registerGuard(w.name());
            }
        }
        engine.retain(p.workloads().stream().map(Workload::name).collect(Collectors.toSet()));
    }

    /** The config's upstream for a key, else its issuer type's provider. */
    private static Optional<GatewaySettings.Upstream> upstreamOf(GatewaySettings gw, IssuerRegistry issuers, KeySpec key) {
        GatewaySettings.Upstream u = gw.upstreams().get(key.name());
        if (u != null) {
            return Optional.of(u);
        }
        try {
            return GatewaySettings.Upstream.defaultFor(issuers.forKey(key).type());
        } catch (IssuerException e) {
            return Optional.empty();
        }
    }
}
