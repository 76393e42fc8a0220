package io.keywarden.daemon.runtime;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.SelectorAttestor;
import io.keywarden.attestation.dev.DevIdentityProvider;
import io.keywarden.attestation.dev.JwtSigner;
import io.keywarden.attestation.spire.DelegatedIdentityClient;
import io.keywarden.attestation.spire.SpireIdentityProvider;
import io.keywarden.daemon.BuildInfo;
import io.keywarden.daemon.InputProblem;
import io.keywarden.daemon.admin.AdminServer;
import io.keywarden.daemon.blocks.BlockList;
import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.config.Config;
import io.keywarden.daemon.handover.HandoverServer;
import io.keywarden.daemon.handover.Inheritance;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.issuer.Lease;
import io.keywarden.daemon.lifecycle.KillSwitch;
import io.keywarden.daemon.lifecycle.LeaseEvents;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.daemon.lifecycle.RevokeReason;
import io.keywarden.daemon.lifecycle.SystemScheduler;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.OpsServer;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.delivery.AccessDecider;
import io.keywarden.delivery.KeyFs;
import io.keywarden.delivery.TmpfsDelivery;
import io.keywarden.fuse.FuseSession;
import io.keywarden.linux.LibC;
import io.keywarden.linux.ProcessHardening;
import io.keywarden.policy.Policy;
import io.keywarden.policy.SpiffeId;
import io.keywarden.policy.Workload;
import io.keywarden.policy.yaml.Problem;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running daemon, assembled from a {@link Spec} as {@link Component}s in dependency order:
 * instance locks, the ledger, the scheduler, the identity provider, the ops server, the issuer
 * instances, then a front end (KeyFS over FUSE, or tmpfs) with the lease core, the admin API and
 * the policy watcher. {@link #close()} stops them in the reverse order (so KeyFS is unmounted
 * before leases are revoked, and the ledger records {@code daemon.stopped} last). The threads
 * each runs on are in {@code package-info.java}.
 *
 * <p>Over 300 lines on purpose: it is the assembly, one short method per component, read top to
 * bottom in start order; the components themselves live in their packages.
 */
public final class KeywardenRuntime implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(KeywardenRuntime.class);
    public static final long LEDGER_SEGMENT_BYTES = 64L << 20;
    public static final Duration LEDGER_FSYNC = Duration.ofSeconds(1);

    /** Replaced once at boot when exports are configured, before any component holds it. */
    private Metrics metrics = new Metrics();
    private final Readiness readiness = new Readiness();
    private final Components components = new Components(readiness);
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final KillSwitch killSwitch = new KillSwitch();
    private final Clock clock = Clock.systemUTC();
    private volatile Supplier<Policy> policySource;
    /** Always reads the source in force: the watcher replaces it once it runs. */
    private final Supplier<Policy> policy = () -> policySource.get();
    private AuditTrail audit;
    private Ledger ledger;
    /** What a killed previous run left (its ledger's tail), recovered once the issuers are up. */
    private io.keywarden.daemon.audit.UncleanStop.Finding unclean;
    private io.vertx.core.Vertx vertx;
    private SystemScheduler scheduler;
    private volatile LeaseManager leases;
    private volatile BlockList blocks;
    private volatile boolean eager;
    private volatile boolean closed;
    /** Set once this instance owns its mount, ledger and socket: only then is there anything to release. */
    private volatile boolean booted;
    private volatile int exitCode;
    private volatile String stopReason = "shutdown";
    /** What a predecessor handed over (null: a fresh start). */
    private final Inheritance inherited;
    /** Set while handing over: the stopping components leave their state here instead of unmounting and revoking. */
    private volatile Handing handing;
    /** Set when a handover failed after this instance stopped: the caller starts again from it. */
    private volatile Inheritance resumeWith;
    private volatile FuseSession fuseSession;
    private Spec spec;

    /** What the stopping components of a handover leave for the successor. */
    private static final class Handing {
        volatile FuseSession.Handoff fuse;
        volatile KeyFs.State keyFs;
        volatile List<LeaseManager.HandedSlot> leases = List.of();
        volatile List<io.keywarden.daemon.lifecycle.Unrevoked.Entry> unrevoked = List.of();
    }

    private KeywardenRuntime(Inheritance inherited) {
        this.inherited = inherited;
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
        KeywardenRuntime rt = new KeywardenRuntime(inherited);
        try {
            rt.boot(spec, out);
            return rt;
        } catch (IOException | RuntimeException e) {
            if (inherited != null) {
                rt.handing = new Handing();
                rt.stopReason = "could not take over: " + e.getMessage();
            }
            rt.close();
            throw e;
        }
    }

    private void boot(Spec s, PrintWriter out) throws IOException {
        spec = s;
        // Before any key exists: no core file, not dumpable (no /proc/PID/mem or ptrace for our own uid).
        String hardening = ProcessHardening.apply();
        if (!hardening.isEmpty()) {
            LOG.warn("process hardening incomplete: {}", hardening);
        }
        policySource = s::policy;
        lockInstance(s);
        booted = true;
        readiness.notReady("delivery", "not mounted yet");
        startExports(s);
        startLedger(s);
        scheduler = new SystemScheduler(clock, s.tuning().issuerThreads());
        components.add("scheduler", scheduler);
        // Every second: denials aggregated in the last window reach the ledger, which syncs when due.
        scheduler.every(clock, Duration.ofSeconds(1), () -> {
            audit.flushDenials();
            if (ledger != null) {
                ledger.syncIfDue();
            }
        });
        IdentityProvider identity = startIdentity(s);
        JwtSigner devSigner = identity instanceof DevIdentityProvider d ? d.signer() : null;
        // One Vert.x (one Netty, shared with gRPC) for the ops endpoints and the admin API.
        vertx = io.vertx.core.Vertx.vertx(new io.vertx.core.VertxOptions().setEventLoopPoolSize(1)
                .setWorkerPoolSize(4));
        io.vertx.core.Vertx v = vertx;
        components.add("vertx", () -> v.close().await(5, java.util.concurrent.TimeUnit.SECONDS));
        hook = s.extensions().policyHook().map(h -> new io.keywarden.daemon.hook.PolicyHook(vertx.createHttpClient(), h))
                .orElse(null);
        IssuerRegistry issuers = IssuerFactory.build(s.issuers(), identity, clock, metrics, hook,
                s.extensions().policyHook().map(Config.PolicyHook::timeout).orElse(Duration.ZERO));
        issuerRegistry = issuers;
        Map<String, java.util.function.Supplier<String>> documents = new java.util.LinkedHashMap<>();
        // The public keys client assertions are signed with (private_key_jwt, e.g. Okta), by kid.
        issuers.clientJwks().ifPresent(jwks -> documents.put(IssuerRegistry.CLIENT_JWKS_PATH, () -> jwks));
        if (devSigner != null) {
            documents.put("/.well-known/openid-configuration", devSigner::openidConfigurationJson);
            documents.put("/.well-known/jwks.json", devSigner::jwksJson);
        }
        components.add("ops", OpsServer.start(vertx, s.listen().host(), s.listen().port(), readiness, metrics, documents));
        if (inherited != null) {
            for (Map.Entry<String, byte[]> e : inherited.issuerState().entrySet()) {
                java.util.Optional<Issuer> i = issuers.named(e.getKey());
                try {
                    if (i.isPresent()) {
                        i.get().adoptHandoverState(e.getValue());
                    } else {
                        LOG.warn("issuer {} of the daemon that handed over is not configured here: its leases are left"
                                + " to expire", e.getKey());
                    }
                } catch (io.keywarden.issuer.IssuerException x) {
                    throw new IOException(x.getMessage(), x);
                } finally {
                    java.util.Arrays.fill(e.getValue(), (byte) 0);
                }
            }
        }
        if (unclean != null) {
            UncleanStopRecovery.start(unclean, policy, issuers, audit);
        }
        for (Issuer i : issuers.all()) {
            components.add(Component.of("issuer " + i.name(), () -> { }, i::unavailable));
        }
        components.probe();
        // Before the first request can be served: a blocked workload stays blocked across a restart or a takeover.
        loadBlocks(s);
        FrontEnd delivery = startFrontEnd(s, identity, issuers, out);
        startAdmin(s, identity.name(), ReadyBanner.issuers(s), delivery.toString());
        s.audit().file().ifPresent(admin::ledger);
        admin.explainWith(new io.keywarden.daemon.admin.Why(identity, s.identity().provider() == Config.IdentityProvider.SPIRE,
                policy, leases::blocked, ProcAttestor.system()));
        startGuardAndGateway(s, identity, issuers);
        if (fleet != null) {
            AdminServer a = admin;
            fleet.join(a, readiness, () -> a.statusJson().put("version", BuildInfo.load().version())
                    .put("ready", readiness.isReady()).put("degraded", !readiness.degradations().isEmpty()));
        }
        if (s.extensions().csi().isPresent()) {
            startCsi(s, delivery.path());
        }
        s.policyFile().ifPresent(f -> startWatcher(s, f, issuers));
        components.add("handover", HandoverServer.start(s.handoverSocket(), handoverSide()));
        scheduler.every(clock, s.tuning().readinessInterval(), components::probe);
        ReadyBanner.print(out, s, delivery);
    }

    /** StatsD and OTLP exports of every meter, when the config asks: before anything registers a meter. */
    private void startExports(Spec s) throws IOException {
        List<io.micrometer.core.instrument.MeterRegistry> exports = MetricExports.of(s.extensions().metrics(), s.node());
        if (!exports.isEmpty()) {
            metrics = new Metrics(exports);
            Metrics withExports = metrics;
            components.add("metric exports", withExports::closeExports);
        }
        io.keywarden.daemon.BuildInfo b = io.keywarden.daemon.BuildInfo.load();
        metrics.buildInfo(b.version(), b.commit());
        metrics.readiness(readiness::isReady);
    }

    /** One daemon per mount, ledger and admin socket, decided before anything is touched. */
    private void lockInstance(Spec s) throws IOException {
        try {
            components.add("lock " + s.delivery().path(), InstanceLock.acquire(s.delivery().path(), "the mount point"));
        } catch (java.nio.file.AccessDeniedException e) {
            LOG.debug("no lock beside {} (not ours to write): {}", s.delivery().path(), e.getMessage());
        }
        if (s.audit().file().isPresent()) {
            components.add("lock ledger", InstanceLock.acquire(s.audit().file().get(), "the audit ledger"));
        }
        components.add("lock admin", InstanceLock.acquire(s.adminSocket(), "the admin socket"));
    }

    /** The ledger: added early, so it is stopped late and {@code daemon.stopped} is the last record. */
    private void startLedger(Spec s) throws IOException {
        ledger = s.audit().file().isPresent() ? Ledger.open(s.audit().file().get(), s.node(), clock,
                s.audit().ledger(), s.audit().stdout() ? System.out : null) : null;
        audit = new AuditTrail(ledger, metrics, readiness);
        Ledger opened = ledger;
        components.add("ledger", () -> {
            try {
                audit.record(io.keywarden.daemon.audit.LedgerEvent.DAEMON_STOPPED, Map.of("reason", stopReason));
            } catch (RuntimeException e) {
                LOG.warn("could not record daemon.stopped: {}", e.getMessage());
            }
            if (opened != null) {
                opened.close();
            }
        });
        if (ledger != null && inherited == null) {
            unclean = UncleanStopRecovery.note(ledger, audit, clock.instant()).orElse(null);
        }
        audit.record(io.keywarden.daemon.audit.LedgerEvent.DAEMON_STARTED, Map.of("reason", inherited == null ? s.label() : s.label() + " (took over from pid "
                + inherited.fromPid() + ", version " + inherited.fromVersion() + ": " + inherited.leases().size()
                + " leases, " + inherited.keyFs().openFiles().size() + " open files)", "version", BuildInfo.load().version()));
        audit.record(io.keywarden.daemon.audit.LedgerEvent.POLICY_LOADED, Map.of("reason", policySummary(s.policy())));
    }

    private IdentityProvider startIdentity(Spec s) {
        ProcAttestor proc = ProcAttestor.system();
        IdentityProvider identity;
        AutoCloseable stop = () -> { };
        if (s.identity().provider() == Config.IdentityProvider.SPIRE) {
            DelegatedIdentityClient client = new DelegatedIdentityClient(s.identity().spireAdminSocket(),
                    s.tuning().spireTimeout());
            stop = client;
            identity = new SpireIdentityProvider(proc, client, policy, s.identity().audience(), clock);
        } else {
            String iss = s.identity().devIssuer().orElse("http://" + s.listen());
            JwtSigner signer = s.identity().devSigningKey().map(f -> new JwtSigner(iss, List.of(s.identity().audience()),
                    clock, DevSigningKey.loadOrCreate(f))).orElseGet(() -> new JwtSigner(iss, List.of(s.identity().audience()),
                    clock));
            identity = new DevIdentityProvider(new SelectorAttestor(proc, policy), signer, clock);
        }
        components.add(Component.of("identity", stop, identity::unavailable));
        return identity;
    }

    /** Where keys are served: KeyFS over FUSE, or tmpfs files, at {@code path}. */
    record FrontEnd(boolean fuse, Path path, TmpfsDelivery.Layout layout) {
        /** The file a workload reads its key from. */
        Path apiKey(String workload, String key) {
            return (layout == TmpfsDelivery.Layout.PER_WORKLOAD ? path.resolve(workload) : path).resolve(key)
                    .resolve("api_key");
        }

        /** As the admin API's status says it: {@code fuse PATH} or {@code tmpfs PATH}. */
        @Override
        public String toString() {
            return (fuse ? "fuse " : "tmpfs ") + path;
        }
    }

    /** KeyFS over FUSE when possible; tmpfs when configured, or as {@code keywarden dev}'s fallback. */
    private FrontEnd startFrontEnd(Spec s, IdentityProvider identity, IssuerRegistry issuers, PrintWriter out)
            throws IOException {
        boolean root = LibC.geteuid() == 0;
        Spec.DeliverySpec d = s.delivery();
        String whyNoFuse = d.mode() == Config.DeliveryMode.TMPFS ? null
                : !root ? "not running as root: mounting FUSE needs CAP_SYS_ADMIN"
                : !Files.exists(Path.of("/dev/fuse")) ? "/dev/fuse does not exist" : null;
        if (inherited != null && (d.mode() != Config.DeliveryMode.FUSE || whyNoFuse != null)) {
            throw new IOException("cannot take over the FUSE mount at " + inherited.mountPoint() + ": "
                    + (whyNoFuse != null ? whyNoFuse : "this daemon is configured for tmpfs delivery"));
        }
        if (d.mode() == Config.DeliveryMode.FUSE && whyNoFuse == null) {
            try {
                startKeyFs(s, identity, issuers);
                return new FrontEnd(true, d.path(), TmpfsDelivery.Layout.PER_KEY);
            } catch (IOException e) {
                if (inherited != null) {
                    throw e;
                }
                whyNoFuse = "mounting FUSE at " + d.path() + " failed: " + e.getMessage();
            }
        }
        if (d.mode() == Config.DeliveryMode.FUSE && !d.tmpfsFallback()) {
            throw new IOException(whyNoFuse);
        }
        Path dir = d.path();
        if (d.mode() == Config.DeliveryMode.FUSE) {
            if (!root && d.path().equals(DevSpec.DEFAULT_MOUNT)) {
                String why = whyNoFuse;
                dir = d.xdgRuntimeDir().map(x -> x.resolve("keywarden")).orElseThrow(() -> new InputProblem(
                        "keywarden: FUSE is unavailable (" + why + ") and XDG_RUNTIME_DIR is not set for tmpfs delivery;"
                                + " pass --mount DIR on a tmpfs you own, or run as root for KeyFS"));
            }
            out.println("keywarden: " + whyNoFuse + "; falling back to tmpfs delivery in " + dir);
        }
        // Without root every file is ours to own: one workload a key, laid out as KeyFS lays it out.
        TmpfsDelivery.Layout layout = root ? TmpfsDelivery.Layout.PER_WORKLOAD : TmpfsDelivery.Layout.PER_KEY;
        startTmpfs(s, identity, issuers, dir, root, layout, out);
        return new FrontEnd(false, dir, layout);
    }

    private LeaseManager startLeases(IssuerRegistry issuers, IdentityProvider identity, LeaseEvents frontEnd,
                                     boolean revokeOnShutdown) {
        LeaseManager lm = new LeaseManager(issuers, policy, clock, scheduler, new Random(new SecureRandom().nextLong()),
                LeaseEvents.of(new LoggingEvents(), audit, frontEnd), identity::isAlive, killSwitch).start();
        leaseGauges(lm, policy.get());
        metrics.unrevokedGauge(lm.unrevoked(), io.keywarden.daemon.lifecycle.Unrevoked::count);
        components.add("leases", () -> {
            Handing h = handing;
            if (h == null) {
                lm.shutdown(revokeOnShutdown);
            } else {
                // A handover: timers stop, nothing is revoked; the successor continues every lease.
                lm.shutdown(false);
                h.leases = lm.export();
                h.unrevoked = lm.unrevoked().list();
            }
        });
        leases = lm;
        return lm;
    }

    private void startKeyFs(Spec s, IdentityProvider identity, IssuerRegistry issuers) throws IOException {
        KeyFs[] fs = new KeyFs[1];
        // A key changed: a new key gets a new api_key inode (before any open is given it), and the
        // kernel drops the pages of the one it replaces, revoked or expired (before that is reported).
        LeaseEvents pageCache = new LeaseEvents() {
            @Override
            public void issued(Workload w, String key, Lease lease, Lease previous) {
                fs[0].keyIssued(w.name(), key, lease.key());
            }

            @Override
            public void revoked(Workload w, String key, Lease lease, RevokeReason code, String reason) {
                fs[0].keyGone(w.name(), key, lease.key().fingerprint());
            }

            @Override
            public void expired(Workload w, String key, Lease lease) {
                fs[0].keyGone(w.name(), key, lease.key().fingerprint());
            }
        };
        LeaseManager lm = startLeases(issuers, identity, pageCache, s.revokeOnShutdown());
        FuseSession.Options opts = FuseSession.Options.defaults("keywarden")
                .withRequestTimeout((int) s.delivery().fuseRequestTimeout().toSeconds()).onLost(this::mountLost);
        if (s.tuning().fuseWorkers() > 0) {
            opts = opts.withWorkers(s.tuning().fuseWorkers());
        }
        FuseSession session;
        if (inherited != null) {
            Path here = s.delivery().path().toAbsolutePath().normalize();
            if (!inherited.mountPoint().equals(here)) {
                throw new IOException("the running daemon serves " + inherited.mountPoint() + ", this one is configured"
                        + " for " + here + ": a takeover keeps the mount where it is");
            }
            lm.adopt(inherited.leases());
            lm.adoptUnrevoked(inherited.unrevoked());
            fs[0] = KeyFs.continuing(access(s, identity), clock, inherited.keyFs());
            session = FuseSession.adopt(here, fs[0], inherited.fuse(), opts);
            LOG.info("took over {} from pid {}: {} leases, {} open files", here, inherited.fromPid(),
                    inherited.leases().size(), inherited.keyFs().openFiles().size());
        } else {
            fs[0] = new KeyFs(access(s, identity), clock);
            session = FuseSession.mount(s.delivery().path(), fs[0], opts);
        }
        fuseSession = session;
        KeyFs keyFs = fs[0];
        components.add(Component.of("delivery", () -> {
            Handing h = handing;
            if (h == null) {
                session.close();
                return;
            }
            // A handover: stop reading requests (they wait in the kernel), keep the mount and the descriptor.
            int left = session.pause(Duration.ofSeconds(15));
            if (left > 0) {
                LOG.warn("handover: {} FUSE requests still being answered after 15 s; they are answered late", left);
            }
            h.fuse = session.handoff();
            h.keyFs = keyFs.export();
        }, () -> session.isLost()
                ? java.util.Optional.of("the FUSE mount at " + s.delivery().path() + " is gone")
                : java.util.Optional.empty()));
        fs[0].attach(session);
        readiness.ready("delivery");
    }

    private AccessDecider access;
    private ExecutorService attestPool;

    /** The access core every front end asks (KeyFS, the gateway), built once after the lease core. */
    private AccessDecider access(Spec s, IdentityProvider identity) {
        if (access == null) {
            ExecutorService attest = Executors.newFixedThreadPool(s.tuning().attestThreads(), named("keywarden-attest"));
            ScheduledExecutorService timeouts = Executors.newSingleThreadScheduledExecutor(named("keywarden-open-timeout"));
            components.add("access", () -> {
                attest.shutdownNow();
                timeouts.shutdownNow();
            });
            attestPool = attest;
            access = new AccessDecider(policy, identity, leases, audit, clock, s.tuning().openTimeout(), attest, timeouts);
        }
        return access;
    }

    /**
     * The guard (always: the usage-API sensor and the gateway feed it), its state file, and the
     * gateway when the config has one.
     */
    private void startGuardAndGateway(Spec s, IdentityProvider identity, IssuerRegistry issuers) throws IOException {
        if (s.extensions().fleet().isPresent() && fleet == null) {
            fleet = FleetAssembly.start(vertx, s.extensions().fleet().get(), s.node(), stateFile(s, "fleet-pending.json"),
                    clock, scheduler, metrics, components, new FleetAssembly.Local(policy, () -> blocks, () -> leases, audit));
        }
        Path stateFile = stateFile(s, "guard-state.json");
        GuardRecorder recorder = new GuardRecorder(audit, metrics, () -> leases, () -> blocks, policy, scheduler, clock);
        io.keywarden.daemon.guard.GuardEngine engine = new io.keywarden.daemon.guard.GuardEngine(clock, recorder);
        try {
            engine.restore(io.keywarden.daemon.guard.GuardState.load(stateFile));
        } catch (IOException e) {
            throw new InputProblem("keywarden: " + e.getMessage());
        }
        recorder.resume();
        if (fleet != null) {
            io.keywarden.daemon.fleet.FleetBlockSync sync = fleet.blocks();
            recorder.fleet(sync::publish);
        }
        guard = engine;
        guardMeters(policy.get());
        Runnable save = () -> {
            try {
                io.keywarden.daemon.guard.GuardState.save(stateFile, engine.export());
            } catch (IOException e) {
                LOG.warn("guard state not saved to {}: {}", stateFile, e.getMessage());
            }
        };
        var usageFlush = scheduler.every(clock, Duration.ofSeconds(5), engine::flushUsage);
        var saving = scheduler.every(clock, Duration.ofSeconds(30), save);
        components.add("guard", () -> {
            usageFlush.cancel();
            saving.cancel();
            engine.flushUsage(true);
            save.run();
        });
        io.keywarden.daemon.guard.GatewayTally tally = new io.keywarden.daemon.guard.GatewayTally();
        // With a fleet, budgets, requests per minute and the anomaly rule are decided on the fleet's counts.
        io.keywarden.daemon.fleet.FleetBudgets fleetBudgets = fleet == null ? null
                : new io.keywarden.daemon.fleet.FleetBudgets(fleet.redis(), engine, clock, s.extensions().gateway()
                        .map(Config.Gateway::timeout).orElse(Duration.ofMinutes(1)), metrics);
        if (s.extensions().usage().isPresent()) {
            Config.UsageApi u = s.extensions().usage().get();
            io.keywarden.daemon.guard.UsageApiSensor sensor = new io.keywarden.daemon.guard.UsageApiSensor(u, engine,
                    () -> leases.view(), policy, tally, metrics, clock, fleetBudgets);
            var polling = scheduler.every(clock, u.interval(), sensor::poll);
            components.add("usage sensor", polling::cancel);
            LOG.info("usage sensor: polling {} every {} s", u.url().getHost(), u.interval().toSeconds());
        }
        if (s.extensions().gateway().isPresent()) {
            Config.Gateway gw = s.extensions().gateway().get();
            io.keywarden.attestation.spire.X509SvidSource svids = null;
            if (gw.mtls().isPresent()) {
                io.keywarden.attestation.spire.X509SvidSource src = new io.keywarden.attestation.spire.X509SvidSource(
                        gw.mtls().get().workloadApi());
                components.add(Component.of("gateway mTLS identity", src, src::unavailable));
                svids = src;
                try {
                    if (!src.awaitFirst(Duration.ofSeconds(10))) {
                        LOG.warn("gateway mTLS: no X.509-SVID from {} yet ({}); handshakes fail until one arrives",
                                gw.mtls().get().workloadApi(), src.unavailable().orElse(""));
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            io.keywarden.daemon.guard.TokenBudgets budgets = fleetBudgets == null ? engine : fleetBudgets;
            components.add("gateway", io.keywarden.daemon.gateway.GatewayServer.start(vertx, gw, access(s, identity),
                    policy, k -> upstreamOf(gw, issuers, k), engine, budgets, tally, hook, metrics, attestPool, svids));
        }
    }

    private volatile io.keywarden.daemon.guard.GuardEngine guard;
    private volatile AdminServer admin;
    /** This node's part in the fleet, when the config has {@code fleet:}. */
    private volatile FleetAssembly fleet;

    /** Breach counters at zero for every guarded workload; counters of workloads gone from the policy are dropped. */
    private void guardMeters(Policy p) {
        io.keywarden.daemon.guard.GuardEngine g = guard;
        if (g == null) {
            return;
        }
        for (Workload w : p.workloads()) {
            if (!w.guard().equals(io.keywarden.policy.Guard.NONE)) {
                metrics.registerGuard(w.name());
            }
        }
        g.retain(p.workloads().stream().map(Workload::name).collect(java.util.stream.Collectors.toSet()));
    }
    /** The OPA hook, when the config has one. */
    private io.keywarden.daemon.hook.PolicyHook hook;

    /** The CSI node plugin ({@link CsiPublisher}) over {@code source}. */
    private void startCsi(Spec s, Path source) throws IOException {
        Config.Csi c = s.extensions().csi().get();
        components.add("csi", io.keywarden.daemon.csi.CsiServer.start(c.socket(), source, c.nodeId().orElse(s.node()),
                BuildInfo.load().version(), () -> !closed, new CsiPublisher(policy, () -> leases, audit)));
    }

    /** The config's upstream for a key, else its issuer type's provider. */
    private static java.util.Optional<Config.Upstream> upstreamOf(Config.Gateway gw, IssuerRegistry issuers,
                                                                  io.keywarden.policy.KeySpec key) {
        Config.Upstream u = gw.upstreams().get(key.name());
        if (u != null) {
            return java.util.Optional.of(u);
        }
        try {
            return Config.Upstream.defaultFor(issuers.forKey(key).type());
        } catch (io.keywarden.issuer.IssuerException e) {
            return java.util.Optional.empty();
        }
    }

    private void startTmpfs(Spec s, IdentityProvider identity, IssuerRegistry issuers, Path dir, boolean root,
                            TmpfsDelivery.Layout layout, PrintWriter out) {
        TmpfsDelivery tmpfs;
        try {
            tmpfs = TmpfsDelivery.open(dir, root, layout);
        } catch (IOException e) {
            throw new InputProblem("keywarden: " + e.getMessage());
        }
        // Added before the lease core: revocations at shutdown wipe files that still exist.
        components.add("delivery", tmpfs);
        readiness.ready("delivery");
        startLeases(issuers, identity, new TmpfsPublisher(tmpfs), s.revokeOnShutdown());
        for (Workload w : s.policy().workloads()) {
            if (TmpfsDelivery.ownerOf(w).isEmpty()) {
                out.println("  workload " + w.name() + " has no unix:uid selector: tmpfs delivery cannot serve it");
            }
        }
        eager = true;
        ensureAll(s.policy());
    }

    private void startWatcher(Spec s, Path file, IssuerRegistry issuers) {
        PolicyWatcher watcher = new PolicyWatcher(file, s.policy(), p -> IssuerRegistry.check(s.issuers(), p),
                new PolicyWatcher.Listener() {
                    @Override
                    public void loaded(Policy p) {
                        audit.record(io.keywarden.daemon.audit.LedgerEvent.POLICY_LOADED, Map.of("reason", policySummary(p)));
                        leaseGauges(leases, p);
                        guardMeters(p);
                        blocks.apply(p);
                        if (eager) {
                            ensureAll(p);
                        }
                    }

                    @Override
                    public void rejected(List<Problem> problems) {
                        audit.record(io.keywarden.daemon.audit.LedgerEvent.POLICY_REJECTED, Map.of("reason", String.join("; ",
                                problems.stream().map(Problem::format).toList())));
                    }
                });
        policySource = watcher;
        components.add("policy watcher", watcher.start(scheduler, clock, s.tuning().policyPollInterval()));
    }

    private static java.util.concurrent.ThreadFactory named(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    /** tmpfs delivery serves every workload with a uid eagerly, without waiting for an open. */
    private void ensureAll(Policy p) {
        for (Workload w : p.workloads()) {
            if (TmpfsDelivery.ownerOf(w).isPresent()) {
                for (String k : w.keys()) {
                    leases.ensure(w, k);
                }
            }
        }
    }

    private static String policySummary(Policy p) {
        return p.source() + ": " + p.keys().size() + " keys, " + p.workloads().size() + " workloads";
    }

    /** Per-key lease gauges; keys a reloaded policy adds get theirs then (registration is once per key). */
    private void leaseGauges(LeaseManager lm, Policy p) {
        for (var k : p.keys().values()) {
            metrics.registerKey(k.name(), issuerNameOf(k));
        }
        for (String key : p.keys().keySet()) {
            metrics.leaseGauges(key, lm, m -> m.view().stream().filter(v -> v.key().equals(key) && v.leaseId() != null).count(),
                    m -> m.view().stream().filter(v -> v.key().equals(key) && v.expiresAt() != null)
                            .mapToDouble(v -> Duration.between(clock.instant(), v.expiresAt()).toMillis() / 1000.0)
                            .min().orElse(Double.NaN));
        }
        for (io.keywarden.policy.Workload w : p.workloads()) {
            for (String key : w.keys()) {
                String id = w.name() + "\u0000" + key;
                metrics.workloadLeaseGauge(w.name(), key, lm, m -> liveLeases(m).getOrDefault(id, 0L));
            }
        }
    }

    private volatile IssuerRegistry issuerRegistry;
    /** Live leases by "workload NUL key", counted once per scrape (at most once a second), not once per gauge. */
    private volatile Map.Entry<Long, Map<String, Long>> leaseCounts = Map.entry(0L, Map.of());

    private Map<String, Long> liveLeases(LeaseManager lm) {
        Map.Entry<Long, Map<String, Long>> c = leaseCounts;
        long now = System.nanoTime();
        if (now - c.getKey() > 1_000_000_000L || c.getValue().isEmpty() && c.getKey() == 0L) {
            Map<String, Long> counts = new java.util.HashMap<>();
            for (LeaseManager.LeaseView v : lm.view()) {
                if (v.leaseId() != null) {
                    counts.merge(v.workload() + "\u0000" + v.key(), 1L, Long::sum);
                }
            }
            c = Map.entry(now, counts);
            leaseCounts = c;
        }
        return c.getValue();
    }

    /** The instance that serves {@code key}, for metric labels ("" when the policy names none that exists). */
    private String issuerNameOf(io.keywarden.policy.KeySpec key) {
        try {
            return issuerRegistry == null ? "" : issuerRegistry.forKey(key).name();
        } catch (io.keywarden.issuer.IssuerException e) {
            return "";
        }
    }

    /** A file of state that survives restarts: beside the ledger when there is one, else beside the admin socket. */
    private static Path stateFile(Spec s, String name) {
        return s.audit().file().map(a -> a.resolveSibling(name)).orElse(s.adminSocket().resolveSibling(name));
    }

    /** Blocks survive restarts (see {@link #stateFile}). */
    private void loadBlocks(Spec s) throws IOException {
        blocks = BlockList.load(stateFile(s, "blocks.json"), killSwitch, policy);
    }

    private void startAdmin(Spec s, String identity, String issuers, String delivery) throws IOException {
        AdminServer a = AdminServer.start(vertx, s.adminSocket(), leases, policy, Map.of("node", s.node(),
                "identity", identity, "issuer", issuers, "delivery", delivery), blocks, audit::record);
        admin = a;
        components.add("admin", a);
        LOG.info("admin API on {}", s.adminSocket());
    }

    /** This daemon's side of the handover protocol. */
    private HandoverServer.Daemon handoverSide() {
        return new HandoverServer.Daemon() {
            @Override
            public Inheritance handOver(long toPid) throws HandoverServer.Refused {
                return KeywardenRuntime.this.handOver(toPid);
            }

            @Override
            public void handedOver(long toPid) {
                LOG.info("handed over to pid {}: stopped without unmounting or revoking", toPid);
                handedOverTo = toPid;
                exitCode = 0;
                stopped.countDown();
            }

            @Override
            public void resume(Inheritance kept, String why) {
                LOG.warn("handover failed ({}): serving again", why);
                resumeWith = kept;
                stopped.countDown();
            }

            @Override
            public void refused(io.keywarden.linux.UnixSocket.Peer peer, String why) {
                LOG.warn("handover refused to pid {} (uid {}): {}", peer.pid(), peer.uid(), why);
                if (!closed) {
                    audit.record(io.keywarden.daemon.audit.LedgerEvent.HANDOVER_REFUSED, Map.of("pid", peer.pid(), "uid", peer.uid(), "reason", why));
                }
            }
        };
    }

    /**
     * Stops serving for a successor: every component stops as at shutdown except that the FUSE
     * session is paused (not unmounted) and the leases are exported (not revoked); the ledger
     * records {@code daemon.stopped} with the successor's pid and is closed, the locks released.
     */
    private Inheritance handOver(long toPid) throws HandoverServer.Refused {
        Handing h = new Handing();
        synchronized (this) {
            if (closed) {
                throw new HandoverServer.Refused("this daemon is stopping");
            }
            if (fuseSession == null) {
                throw new HandoverServer.Refused("this daemon serves tmpfs files, not a FUSE mount: stop it, then start"
                        + " the new one");
            }
            handing = h;
            closed = true;
            stopReason = "handing over to pid " + toPid;
        }
        LOG.info("handing over {} to pid {}", spec.delivery().path(), toPid);
        audit.record(io.keywarden.daemon.audit.LedgerEvent.DAEMON_HANDOVER, Map.of("to_pid", toPid, "leases", leases.view().size()));
        components.stopAll();
        if (h.fuse == null) {
            // The delivery component failed to pause, and everything else has stopped: nothing is left to
            // hand over or to serve with. Stop for good (unmount) and let the supervisor start us again.
            fuseSession.close();
            stopReason = "handover failed: the FUSE session could not be paused";
            exitCode = 3;
            stopped.countDown();
            throw new HandoverServer.Refused("the FUSE session could not be paused; this daemon stopped");
        }
        // After every component stopped: no issuance or revocation changes an issuer's state any more.
        Map<String, byte[]> issuerState = new java.util.HashMap<>();
        for (Issuer i : issuerRegistry.all()) {
            byte[] st = i.handoverState();
            if (st.length > 0) {
                issuerState.put(i.name(), st);
            }
        }
        return new Inheritance(ProcessHandle.current().pid(), BuildInfo.load().version(),
                spec.delivery().path().toAbsolutePath().normalize(), h.fuse, h.keyFs, h.leases, issuerState, h.unrevoked);
    }

    private volatile long handedOverTo = -1;

    /** The successor's pid once this instance handed over. */
    public java.util.OptionalLong handedOverTo() {
        return handedOverTo < 0 ? java.util.OptionalLong.empty() : java.util.OptionalLong.of(handedOverTo);
    }

    /** After a handover that failed once this instance had stopped: start again from this. */
    public java.util.Optional<Inheritance> resumeWith() {
        return java.util.Optional.ofNullable(resumeWith);
    }

    public LeaseManager leases() {
        return leases;
    }

    /**
     * The mount went away from outside (umount, an aborted connection, the kernel's request
     * timeout): not ready at once, then a full stop with exit code 3 so a supervisor restarts us;
     * never keep running while serving nothing.
     */
    private void mountLost(String why) {
        readiness.notReady("delivery", why);
        stopReason = "mount lost: " + why;
        exitCode = 3;
        Thread t = new Thread(this::close, "keywarden-mount-lost");
        t.setDaemon(false);
        t.start();
    }

    /** 0 after a requested stop; 3 when the daemon stopped because it could no longer serve. */
    public int exitCode() {
        return exitCode;
    }

    public void awaitStop() throws InterruptedException {
        stopped.await();
    }

    /** Stops every component in the reverse of the order they started. Safe twice. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (booted) {
            LOG.info(handing != null ? "keywarden stopping for a handover: the mount and the leases stay"
                    : "keywarden stopping: unmounting, revoking leases");
        }
        components.stopAll();
        if (booted) {
            LOG.info("keywarden stopped");
        }
        stopped.countDown();
    }
}
