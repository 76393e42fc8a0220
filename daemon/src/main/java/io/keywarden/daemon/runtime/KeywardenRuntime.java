package io.keywarden.daemon.runtime;

import io.keywarden.daemon.hook.HookSettings;
import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.dev.DevIdentityProvider;
import io.keywarden.attestation.dev.JwtSigner;
import io.keywarden.daemon.BuildInfo;
import io.keywarden.daemon.admin.AdminServer;
import io.keywarden.daemon.admin.Why;
import io.keywarden.daemon.blocks.BlockList;
import io.keywarden.daemon.handover.HandoverServer;
import io.keywarden.daemon.handover.Inheritance;
import io.keywarden.daemon.hook.PolicyHook;
import io.keywarden.daemon.lifecycle.KillSwitch;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.daemon.lifecycle.SystemScheduler;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.OpsServer;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.linux.ProcessHardening;
import io.keywarden.policy.Policy;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.io.PrintWriter;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running daemon, assembled from a {@link Spec} as {@link Component}s in dependency order:
 * instance locks, metric exports, the ledger, the scheduler, the identity provider, the issuers,
 * the ops server, the block list, a front end (KeyFS or tmpfs, with the lease and access cores),
 * the admin API, the guard and gateway, the fleet, CSI, the policy watcher and the handover socket.
 * {@link #close()} stops them in the reverse order (so KeyFS is unmounted before leases are revoked,
 * and the ledger records {@code daemon.stopped} last). Each part is built by its owner
 * ({@link FrontEnds}, {@link GuardAssembly}, {@link HandoverCoordinator}, ...); this class only
 * sequences them. The threads each runs on are in {@code package-info.java}.
 */
public final class KeywardenRuntime implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(KeywardenRuntime.class);
    public static final long LEDGER_SEGMENT_BYTES = 64L << 20;
    public static final Duration LEDGER_FSYNC = Duration.ofSeconds(1);

    private final Readiness readiness = new Readiness();
    private final Components components = new Components(readiness);
    private final RunState run = new RunState();
    private final KillSwitch killSwitch = new KillSwitch();
    private final Clock clock = Clock.systemUTC();
    /** What a predecessor handed over (null: a fresh start). */
    private final Inheritance inherited;
    private final HandoverCoordinator handover;
    /** The policy in force: the spec's, then the watcher's once it runs. */
    private volatile Supplier<Policy> policySource;
    private volatile FrontEnds frontEnds;

    private KeywardenRuntime(Spec spec, Inheritance inherited) {
        this.inherited = inherited;
        this.handover = new HandoverCoordinator(run, components, spec.delivery().path());
    }

    public static KeywardenRuntime start(Spec spec, PrintWriter out) throws IOException {
        return start(spec, out, null);
    }

    /**
     * Starts the daemon; with {@code inherited}, it serves the mount and the leases a predecessor
     * handed over instead of mounting and issuing anew. If it fails to start, an inherited mount is
     * left as it is (not unmounted, nothing revoked) for the predecessor to serve again.
     */
    public static KeywardenRuntime start(Spec spec, PrintWriter out, Inheritance inherited) throws IOException {
        KeywardenRuntime rt = new KeywardenRuntime(spec, inherited);
        try {
            rt.boot(spec, out);
            return rt;
        } catch (IOException | RuntimeException e) {
            if (inherited != null) {
                rt.handover.leaveAsInherited();
                rt.run.reason("could not take over: " + e.getMessage());
            }
            rt.close();
            throw e;
        }
    }

    private void boot(Spec s, PrintWriter out) throws IOException {
        // Before any key exists: no core file, not dumpable (no /proc/PID/mem or ptrace for our own uid).
        String hardening = ProcessHardening.apply();
        if (!hardening.isEmpty()) {
            LOG.warn("process hardening incomplete: {}", hardening);
        }
        policySource = s::policy;
        Supplier<Policy> policy = () -> policySource.get();
        InstanceLock.acquireAll(s, components);
        run.booted();
        readiness.notReady("delivery", "not mounted yet");
        Metrics metrics = MetricExports.start(s, readiness, components);
        LedgerAssembly.Opened ledger = LedgerAssembly.start(s, clock, metrics, readiness, components, run, inherited);
        SystemScheduler scheduler = new SystemScheduler(clock, s.tuning().issuerThreads());
        components.add("scheduler", scheduler);
        scheduler.every(clock, Duration.ofSeconds(1), ledger::tick);
        Core core = new Core(s, clock, components, readiness, metrics, ledger.audit(), scheduler, policy);
        IdentityProvider identity = IdentityAssembly.start(s, clock, policy, components);
        // One Vert.x (one Netty, shared with gRPC) for the ops endpoints, the admin API and the gateway:
        // one event loop, or with a gateway one per CPU (tuning.gatewayEventLoops), each serving its
        // share of the gateway's connections.
        Vertx vertx = Vertx.vertx(io.keywarden.daemon.net.ChannelFd.options(
                s.extensions().gateway().isPresent() ? s.tuning().gatewayLoops() : 1, 4));
        components.add("vertx", () -> vertx.close().await(5, TimeUnit.SECONDS));
        if (!vertx.isNativeTransportEnabled()) {
            LOG.warn("{}; the gateway's Unix socket will not start", io.keywarden.daemon.net.ChannelFd.unsupported(vertx));
        }
        PolicyHook hook = s.extensions().policyHook().map(h -> new PolicyHook(vertx.createHttpClient(), h)).orElse(null);
        IssuerRegistry issuers = IssuerFactory.build(s.issuers(), identity, clock, metrics, hook,
                s.extensions().policyHook().map(HookSettings::timeout).orElse(Duration.ZERO));
        components.add("ops", OpsServer.start(vertx, s.listen().host(), s.listen().port(), readiness, metrics,
                documents(issuers, identity)));
        HandoverCoordinator.adoptIssuerState(inherited, issuers);
        ledger.unclean().ifPresent(u -> UncleanStopRecovery.start(u, policy, issuers, ledger.audit()));
        for (Issuer i : issuers.all()) {
            components.add(Component.of("issuer " + i.name(), () -> { }, i::unavailable));
        }
        components.probe();
        // Before the first request can be served: a blocked workload stays blocked across a restart or a takeover.
        BlockList blocks = BlockList.load(core.stateFile("blocks.json"), killSwitch, policy);
        FrontEnds fe = new FrontEnds(core, killSwitch, inherited, handover, this::mountLost);
        frontEnds = fe;
        FrontEnds.FrontEnd delivery = fe.start(identity, issuers, out);
        LeaseManager leases = fe.leases();
        LeaseGauges gauges = new LeaseGauges(metrics, leases, issuers, clock);
        gauges.register(policy.get());
        AdminServer admin = AdminServer.start(vertx, s.adminSocket(), leases, policy, Map.of("node", s.node(),
                "identity", identity.name(), "issuer", ReadyBanner.issuers(s), "delivery", delivery.toString()), blocks,
                ledger.audit()::record);
        components.add("admin", admin);
        LOG.info("admin API on {}", s.adminSocket());
        s.audit().file().ifPresent(admin::ledger);
        admin.explainWith(new Why(identity, s.identity().provider() == IdentitySettings.Provider.SPIRE, policy,
                leases::blocked, ProcAttestor.system()));
        FleetAssembly fleet = s.extensions().fleet().isEmpty() ? null : FleetAssembly.start(vertx,
                s.extensions().fleet().get(), s.node(), core.stateFile("fleet-pending.json"), clock, scheduler, metrics,
                components, new FleetAssembly.Local(policy, () -> blocks, fe::leases, ledger.audit()));
        // The gateway asks the access core KeyFS asks (made here for a tmpfs node with a gateway).
        GuardAssembly.GatewayParts gateway = s.extensions().gateway().isEmpty() ? null
                : new GuardAssembly.GatewayParts(vertx, fe.access(identity), fe.attestPool(), issuers, hook);
        GuardAssembly guard = GuardAssembly.start(core, fe::leases, blocks, fleet, gateway);
        if (fleet != null) {
            fleet.join(admin, readiness, () -> admin.statusJson().put("version", BuildInfo.load().version())
                    .put("ready", readiness.isReady()).put("degraded", !readiness.degradations().isEmpty()));
        }
        if (s.extensions().csi().isPresent()) {
            CsiPublisher.start(core, s.extensions().csi().get(), delivery.path(), () -> !run.stopping(), fe::leases);
        }
        PolicyReloads reloads = new PolicyReloads().follow(gauges::register).follow(guard::meters).follow(blocks::apply)
                .follow(fe::ensureAll);
        s.policyFile().ifPresent(f -> policySource = reloads.start(core, f));
        handover.serving(ledger.audit(), fe.fuseSession(), leases, issuers);
        components.add("handover", HandoverServer.start(s.handoverSocket(), handover));
        scheduler.every(clock, s.tuning().readinessInterval(), components::probe);
        ReadyBanner.print(out, s, delivery);
    }

    /** The JSON documents the ops server publishes: the client JWKS of the issuers, the dev provider's OIDC discovery. */
    private static Map<String, Supplier<String>> documents(IssuerRegistry issuers, IdentityProvider identity) {
        Map<String, Supplier<String>> documents = new LinkedHashMap<>();
        // The public keys client assertions are signed with (private_key_jwt, e.g. Okta), by kid.
        issuers.clientJwks().ifPresent(jwks -> documents.put(IssuerRegistry.CLIENT_JWKS_PATH, () -> jwks));
        if (identity instanceof DevIdentityProvider d) {
            JwtSigner signer = d.signer();
            documents.put("/.well-known/openid-configuration", signer::openidConfigurationJson);
            documents.put("/.well-known/jwks.json", signer::jwksJson);
        }
        return documents;
    }

    /** The successor's pid once this instance handed over. */
    public OptionalLong handedOverTo() {
        return handover.handedOverTo();
    }

    /** After a handover that failed once this instance had stopped: start again from this. */
    public Optional<Inheritance> resumeWith() {
        return handover.resumeWith();
    }

    public LeaseManager leases() {
        FrontEnds fe = frontEnds;
        return fe == null ? null : fe.leases();
    }

    /**
     * The mount went away from outside (umount, an aborted connection, the kernel's request
     * timeout): not ready at once, then a full stop with exit code 3 so a supervisor restarts us;
     * never keep running while serving nothing.
     */
    private void mountLost(String why) {
        readiness.notReady("delivery", why);
        run.reason("mount lost: " + why);
        run.exitCode(3);
        Thread t = new Thread(this::close, "keywarden-mount-lost");
        t.setDaemon(false);
        t.start();
    }

    /** 0 after a requested stop; 3 when the daemon stopped because it could no longer serve. */
    public int exitCode() {
        return run.exitCode();
    }

    public void awaitStop() throws InterruptedException {
        run.awaitStopped();
    }

    /** Stops every component in the reverse of the order they started. Safe twice: a second call waits for the first. */
    @Override
    public synchronized void close() {
        if (!run.beginStop(null)) {
            return;
        }
        if (run.isBooted()) {
            LOG.info(handover.handing() != null ? "keywarden stopping for a handover: the mount and the leases stay"
                    : "keywarden stopping: unmounting, revoking leases");
        }
        components.stopAll();
        if (run.isBooted()) {
            LOG.info("keywarden stopped");
        }
        run.stopped();
    }
}
