package io.keywarden.daemon.runtime;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.spire.DelegatedIdentityClient;
import io.keywarden.attestation.spire.SpireIdentityProvider;
import io.keywarden.daemon.config.Config;
import io.keywarden.daemon.issuer.Issuer;
import io.keywarden.daemon.issuer.Lease;
import io.keywarden.daemon.issuer.IssuerException;
import io.keywarden.daemon.issuer.VaultIssuer;
import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.SelectorAttestor;
import io.keywarden.attestation.dev.DevIdentityProvider;
import io.keywarden.attestation.dev.JwtSigner;
import io.keywarden.daemon.BuildInfo;
import io.keywarden.daemon.admin.AdminServer;
import io.keywarden.daemon.admin.Blocks;
import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.OpsServer;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.daemon.UserError;
import io.keywarden.daemon.issuer.DevIssuer;
import io.keywarden.daemon.issuer.MeteredIssuer;
import io.keywarden.daemon.lifecycle.LeaseEvents;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.daemon.lifecycle.SystemScheduler;
import io.keywarden.delivery.KeyFs;
import io.keywarden.delivery.TmpfsDelivery;
import io.keywarden.fuse.FuseSession;
import io.keywarden.linux.LibC;
import io.keywarden.linux.ProcessHardening;
import io.keywarden.policy.Durations;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Selector;
import io.keywarden.policy.Workload;
import io.keywarden.policy.yaml.Problem;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running daemon: identity provider, issuer, lease lifecycle, delivery (KeyFS or tmpfs), audit
 * ledger, ops endpoints and admin API, wired from a {@link Spec}; {@link #close()} tears them down
 * in order (unmount, revoke, record, close).
 */
public final class KeywardenRuntime implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(KeywardenRuntime.class);

    private final List<AutoCloseable> resources = new ArrayList<>();
    private final Metrics metrics = new Metrics();
    private final Readiness readiness = new Readiness();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private AuditTrail audit;
    private volatile LeaseManager leases;
    private SystemScheduler scheduler;
    private boolean revokeOnShutdown = true;
    private volatile Supplier<Policy> policySource;
    /** Always reads the source in force: the watcher replaces it once it runs. */
    private final Supplier<Policy> policy = () -> policySource.get();
    public static final long LEDGER_SEGMENT_BYTES = 64L << 20;
    public static final Duration LEDGER_FSYNC = Duration.ofSeconds(1);

    private volatile boolean closed;
    private volatile Blocks blocks;
    /** Set once this instance owns its mount, ledger and socket: only then is there anything to release. */
    private volatile boolean booted;
    private volatile int exitCode;
    private volatile String stopReason = "shutdown";
    private volatile boolean eager;

    private KeywardenRuntime() {
    }

    public static KeywardenRuntime start(Spec spec, PrintWriter out) throws IOException {
        KeywardenRuntime rt = new KeywardenRuntime();
        try {
            rt.boot(spec, out);
            return rt;
        } catch (IOException | RuntimeException e) {
            rt.close();
            throw e;
        }
    }

    private IdentityProvider identity(Spec s, Clock clock) {
        ProcAttestor proc = ProcAttestor.system();
        if (s.identity() == Config.IdentityProvider.SPIRE) {
            DelegatedIdentityClient client = new DelegatedIdentityClient(s.spireSocket(), Duration.ofSeconds(5));
            resources.add(client);
            return new SpireIdentityProvider(proc, client, policy, s.audience(), clock);
        }
        return new DevIdentityProvider(new SelectorAttestor(proc, policy),
                new JwtSigner("http://" + s.listen(), List.of(s.audience()), clock), clock);
    }

    private Issuer issuer(Spec s, IdentityProvider identity, Clock clock) {
        if (s.issuer() == Config.IssuerProvider.VAULT) {
            try {
                return new VaultIssuer(s.vault().orElseThrow(), identity, clock);
            } catch (IssuerException e) {
                throw new UserError(e.getMessage());
            }
        }
        return new DevIssuer(s.devTtl(), clock);
    }

    private void report(String component, java.util.Optional<String> problem) {
        if (problem.isPresent()) {
            if (readiness.isReady() || !readiness.reasons().contains(component + ": " + problem.get())) {
                LOG.warn("not ready: {}: {}", component, problem.get());
            }
            readiness.notReady(component, problem.get());
        } else {
            readiness.ready(component);
        }
    }

    /** Runs {@code task} every {@code period} on the scheduler until it closes; a failing run is logged, not fatal. */
    private void every(Clock clock, Duration period, Runnable task) {
        scheduler.at(clock.instant().plus(period), () -> {
            try {
                task.run();
            } catch (RuntimeException e) {
                LOG.warn("periodic task failed: {}", e.toString());
            }
            every(clock, period, task);
        });
    }

    private void boot(Spec s, PrintWriter out) throws IOException {
        // Before any key exists: no core file, not dumpable (no /proc/PID/mem or ptrace for our own uid).
        String hardening = ProcessHardening.apply();
        if (!hardening.isEmpty()) {
            LOG.warn("process hardening incomplete: {}", hardening);
        }
        Clock clock = Clock.systemUTC();
        Policy initial = s.policy();
        policySource = s::policy;
        revokeOnShutdown = s.revokeOnShutdown();
        boolean root = LibC.geteuid() == 0;
        // One daemon per mount, ledger and admin socket, decided before anything is touched.
        try {
            resources.add(InstanceLock.acquire(s.deliveryPath(), "the mount point"));
        } catch (java.nio.file.AccessDeniedException e) {
            LOG.debug("no lock beside {} (not ours to write): {}", s.deliveryPath(), e.getMessage());
        }
        if (s.audit().isPresent()) {
            resources.add(InstanceLock.acquire(s.audit().get(), "the audit ledger"));
        }
        resources.add(InstanceLock.acquire(s.adminSocket(), "the admin socket"));
        booted = true;
        readiness.notReady("delivery", "not mounted yet");
        IdentityProvider identity = identity(s, clock);
        JwtSigner devSigner = identity instanceof DevIdentityProvider d ? d.signer() : null;
        resources.add(OpsServer.start(s.listen(), readiness, metrics, devSigner));
        Ledger ledger = null;
        if (s.audit().isPresent()) {
            ledger = Ledger.open(s.audit().get(), s.node(), clock, s.ledger(), s.auditStdout() ? System.out : null);
            resources.add(ledger);
        }
        audit = new AuditTrail(ledger, metrics, readiness);
        audit.record("daemon.started", Map.of("reason", s.label(), "version", BuildInfo.load().version()));
        audit.record("policy.loaded", Map.of("reason", policySummary(initial)));
        if (s.policyFile().isPresent()) {
            PolicyWatcher watcher = new PolicyWatcher(s.policyFile().get(), initial,
                    p -> s.issuer() == Config.IssuerProvider.VAULT ? p.problemsForVaultIssuer() : List.of(),
                    new PolicyWatcher.Listener() {
                        @Override
                        public void loaded(Policy p) {
                            audit.record("policy.loaded", Map.of("reason", policySummary(p)));
                            LeaseManager lm = leases;
                            if (lm != null) {
                                leaseGauges(lm, p, clock);
                            }
                            applyBlocks(p);
                            if (eager) {
                                ensureAll(p);
                            }
                        }

                        @Override
                        public void rejected(List<Problem> problems) {
                            audit.record("policy.rejected", Map.of("reason", String.join("; ",
                                    problems.stream().map(Problem::format).toList())));
                        }
                    }, 2000);
            resources.add(watcher);
            policySource = watcher;
        }
        scheduler = new SystemScheduler(clock, 8);
        Ledger ledgerToSync = ledger;
        every(clock, Duration.ofSeconds(1), () -> {
            audit.flushDenials();
            if (ledgerToSync != null) {
                ledgerToSync.syncIfDue();
            }
        });
        Issuer issuer = new MeteredIssuer(issuer(s, identity, clock), metrics);
        // Readiness tells the truth about what serving needs: probed now and every 10 s.
        Runnable probe = () -> {
            report("identity", identity.unavailable());
            report("issuer", issuer.unavailable());
        };
        probe.run();
        every(clock, Duration.ofSeconds(10), probe);
        String identityName = identity.name();
        String whyNoFuse = s.delivery() == Config.DeliveryMode.TMPFS ? null
                : !root ? "not running as root (mounting FUSE needs CAP_SYS_ADMIN)"
                : !Files.exists(Path.of("/dev/fuse")) ? "/dev/fuse does not exist" : null;
        if (s.delivery() == Config.DeliveryMode.FUSE && whyNoFuse == null) {
            java.util.concurrent.atomic.AtomicReference<KeyFs> keyFs = new java.util.concurrent.atomic.AtomicReference<>();
            // A key's content changed: the kernel drops what it may have cached of that workload's api_key.
            LeaseEvents pageCache = new LeaseEvents() {
                @Override
                public void issued(Workload w, String key, Lease lease, Lease previous) {
                    changed(w, key);
                }

                @Override
                public void revoked(Workload w, String key, Lease lease, String reason) {
                    changed(w, key);
                }

                @Override
                public void expired(Workload w, String key, Lease lease) {
                    changed(w, key);
                }

                private void changed(Workload w, String key) {
                    KeyFs f = keyFs.get();
                    if (f != null) {
                        f.keyChanged(w.name(), key);
                    }
                }
            };
            leases = newLeases(issuer, clock, identity, LeaseEvents.of(new LoggingEvents(), audit, pageCache));
            KeyFs fs = new KeyFs(policy, identity, leases, audit, clock, Duration.ofSeconds(10));
            keyFs.set(fs);
            try {
                FuseSession session = FuseSession.mount(s.deliveryPath(), fs, FuseSession.Options.defaults("keywarden")
                        .withRequestTimeout((int) s.fuseRequestTimeout().toSeconds()).onLost(this::mountLost));
                resources.add(session);
                fs.attach(session);
                readiness.ready("delivery");
                startAdmin(s, identityName, issuer.name(), "fuse " + s.deliveryPath());
                printReady(out, s, "KeyFS (FUSE)", s.deliveryPath(), false);
                return;
            } catch (IOException e) {
                whyNoFuse = "mounting FUSE at " + s.deliveryPath() + " failed: " + e.getMessage();
                leases.shutdown(false);
            }
        }
        if (s.delivery() == Config.DeliveryMode.FUSE && !s.tmpfsFallback()) {
            throw new IOException(whyNoFuse);
        }
        Path dir = s.deliveryPath();
        if (s.delivery() == Config.DeliveryMode.FUSE) {
            if (!root) {
                dir = s.xdgRuntimeDir().map(x -> x.resolve("keywarden")).orElseThrow(() -> new UserError(
                        "keywarden: FUSE is unavailable and XDG_RUNTIME_DIR is not set for tmpfs delivery; pass --mount DIR"
                                + " on a tmpfs"));
            }
            out.println("keywarden: " + whyNoFuse + "; falling back to tmpfs delivery in " + dir);
        }
        TmpfsDelivery tmpfs;
        try {
            tmpfs = TmpfsDelivery.open(dir, root);
        } catch (IOException e) {
            throw new UserError("keywarden: " + e.getMessage());
        }
        resources.add(tmpfs);
        readiness.ready("delivery");
        leases = newLeases(issuer, clock, identity, LeaseEvents.of(new LoggingEvents(), audit, new TmpfsPublisher(tmpfs)));
        for (Workload w : initial.workloads()) {
            if (TmpfsDelivery.ownerOf(w).isEmpty()) {
                out.println("  workload " + w.name() + " has no unix:uid selector: tmpfs delivery cannot serve it");
            }
        }
        eager = true;
        ensureAll(initial);
        startAdmin(s, identityName, issuer.name(), "tmpfs " + dir);
        printReady(out, s, "tmpfs", dir, true);
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

    private LeaseManager newLeases(Issuer issuer, Clock clock, IdentityProvider identity, LeaseEvents events) {
        LeaseManager lm = new LeaseManager(issuer, policy, clock, scheduler, new Random(new SecureRandom().nextLong()),
                events, identity::isAlive);
        leaseGauges(lm, policy.get(), clock);
        return lm;
    }

    /** Per-key lease gauges; keys a reloaded policy adds get theirs then (registration is once per key). */
    private void leaseGauges(LeaseManager lm, Policy p, Clock clock) {
        p.keys().keySet().forEach(metrics::registerKey);
        for (String key : p.keys().keySet()) {
            metrics.leaseGauges(key, lm, m -> m.view().stream().filter(v -> v.key().equals(key) && v.leaseId() != null).count(),
                    m -> m.view().stream().filter(v -> v.key().equals(key) && v.expiresAt() != null)
                            .mapToDouble(v -> Duration.between(clock.instant(), v.expiresAt()).toMillis() / 1000.0)
                            .min().orElse(Double.NaN));
        }
    }

    private void startAdmin(Spec s, String identity, String issuer, String delivery) throws IOException {
        // Blocks survive restarts: beside the ledger when there is one, else beside the admin socket.
        Path blocksFile = s.audit().map(a -> a.resolveSibling("blocks.json"))
                .orElse(s.adminSocket().resolveSibling("blocks.json"));
        Blocks blocks = Blocks.load(blocksFile);
        this.blocks = blocks;
        applyBlocks(policy.get());
        resources.add(AdminServer.start(s.adminSocket(), leases, policy, Map.of("node", s.node(), "identity", identity,
                "issuer", issuer, "delivery", delivery), blocks, audit::record));
        LOG.info("admin API on {}", s.adminSocket());
    }

    /** The persisted blocks, applied to the workloads of the current policy (at start and on every reload). */
    private void applyBlocks(Policy p) {
        Blocks b = blocks;
        if (b == null || leases == null) {
            return;
        }
        b.all().forEach((id, reason) -> {
            var w = p.workloadBySpiffeId(io.keywarden.policy.SpiffeId.parse(id));
            if (w.isPresent()) {
                leases.block(w.get().name(), reason);
                LOG.warn("{} ({}) stays blocked: {}", w.get().name(), id, reason);
            } else {
                LOG.warn("blocked SPIFFE ID {} is not in the policy (the block is kept for when it returns)", id);
            }
        });
    }

    private static void printReady(PrintWriter out, Spec s, String mode, Path at, boolean tmpfs) {
        String issuer = s.issuer() == Config.IssuerProvider.VAULT ? "vault issuer" : "dev issuer, key TTL "
                + Durations.format(s.devTtl());
        out.printf("%s: serving %s at %s (%s identity, %s). Ctrl-C to stop.%n", s.label(), mode, at,
                s.identity().name().toLowerCase(java.util.Locale.ROOT), issuer);
        for (Workload w : s.policy().workloads()) {
            String who = s.identity() == Config.IdentityProvider.SPIRE ? "processes SPIRE attests as"
                    : w.selectors().isEmpty() ? "nobody (no selectors)"
                    : String.join(" and ", w.selectors().stream().map(KeywardenRuntime::describe).toList());
            for (String k : w.keys()) {
                Path file = tmpfs ? at.resolve(w.name()).resolve(k).resolve("api_key") : at.resolve(k).resolve("api_key");
                out.printf("  %s  <- readable by %s (%s)%n", file, who, w.spiffeId());
            }
        }
        s.audit().ifPresent(a -> out.printf("  ledger: %s (keywarden audit show %s)%n", a, a));
        out.flush();
    }

    private static String describe(Selector s) {
        return switch (s.kind()) {
            case UNIX_UID -> "uid " + s.value();
            case UNIX_GID -> "gid " + s.value();
            case UNIX_PATH -> "exe " + s.value();
            case UNIX_SHA256 -> "exe sha256 " + s.value().substring(0, 12) + "…";
            case K8S_POD_UID -> "pod " + s.value();
            case CONTAINER_ID -> "container " + s.value().substring(0, 12);
        };
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

    /** Unmounts, revokes every lease (when configured), records the stop, closes the rest. Safe twice. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (booted) {
            LOG.info("keywarden stopping: unmounting, revoking leases");
        }
        for (int i = resources.size() - 1; i >= 0; i--) {
            if (resources.get(i) instanceof FuseSession s) {
                s.close();
            }
        }
        if (leases != null) {
            leases.shutdown(revokeOnShutdown);
        }
        if (audit != null) {
            try {
                audit.record("daemon.stopped", Map.of("reason", stopReason));
            } catch (RuntimeException e) {
                LOG.warn("could not record daemon.stopped: {}", e.getMessage());
            }
        }
        for (int i = resources.size() - 1; i >= 0; i--) {
            AutoCloseable r = resources.get(i);
            if (!(r instanceof FuseSession)) {
                try {
                    r.close();
                } catch (Exception e) {
                    LOG.warn("closing {} failed: {}", r.getClass().getSimpleName(), e.getMessage());
                }
            }
        }
        if (scheduler != null) {
            scheduler.close();
        }
        if (booted) {
            LOG.info("keywarden stopped: mount released, leases {}", revokeOnShutdown ? "revoked" : "left to expire");
        }
        stopped.countDown();
    }
}
