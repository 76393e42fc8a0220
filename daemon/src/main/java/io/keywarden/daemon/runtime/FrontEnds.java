package io.keywarden.daemon.runtime;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.daemon.InputProblem;
import io.keywarden.daemon.handover.Inheritance;
import io.keywarden.daemon.lifecycle.KillSwitch;
import io.keywarden.daemon.lifecycle.LeaseEvents;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.daemon.lifecycle.RevokeReason;
import io.keywarden.delivery.AccessDecider;
import io.keywarden.delivery.KeyFs;
import io.keywarden.delivery.TmpfsDelivery;
import io.keywarden.fuse.FuseSession;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.issuer.Lease;
import io.keywarden.linux.LibC;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where keys are served, with the lease core and the access core behind it: KeyFS over FUSE when
 * it can be mounted (or taken over), else tmpfs files — configured, or {@code keywarden dev}'s
 * fallback without root — served eagerly to every workload with a uid. A handover in progress
 * ({@link HandoverCoordinator#handing()}) makes the delivery and lease components leave their
 * state for the successor instead of unmounting and revoking.
 */
final class FrontEnds {
    private static final Logger LOG = LoggerFactory.getLogger(FrontEnds.class);

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

    private final Core core;
    private final KillSwitch killSwitch;
    private final Inheritance inherited;
    private final HandoverCoordinator handover;
    private final Consumer<String> mountLost;
    private volatile LeaseManager leases;
    private volatile FuseSession fuseSession;
    private volatile boolean eager;
    private AccessDecider access;
    private ExecutorService attestPool;

    /** {@code inherited}: a predecessor's mount and leases (null: a fresh start); {@code mountLost}: the mount went away. */
    FrontEnds(Core core, KillSwitch killSwitch, Inheritance inherited, HandoverCoordinator handover,
              Consumer<String> mountLost) {
        this.core = core;
        this.killSwitch = killSwitch;
        this.inherited = inherited;
        this.handover = handover;
        this.mountLost = mountLost;
    }

    LeaseManager leases() {
        return leases;
    }

    /** The FUSE session, or null when keys are served as tmpfs files. */
    FuseSession fuseSession() {
        return fuseSession;
    }

    /** The pool attestations that must ask SPIRE run on (the gateway's too). */
    ExecutorService attestPool() {
        return attestPool;
    }

    /** KeyFS over FUSE when possible; tmpfs when configured, or as {@code keywarden dev}'s fallback. */
    FrontEnd start(IdentityProvider identity, IssuerRegistry issuers, PrintWriter out) throws IOException {
        Spec s = core.spec();
        boolean root = LibC.geteuid() == 0;
        Spec.DeliverySpec d = s.delivery();
        String whyNoFuse = d.mode() == DeliveryMode.TMPFS ? null
                : !root ? "not running as root: mounting FUSE needs CAP_SYS_ADMIN"
                : !Files.exists(Path.of("/dev/fuse")) ? "/dev/fuse does not exist" : null;
        if (inherited != null && (d.mode() != DeliveryMode.FUSE || whyNoFuse != null)) {
            throw new IOException("cannot take over the FUSE mount at " + inherited.mountPoint() + ": "
                    + (whyNoFuse != null ? whyNoFuse : "this daemon is configured for tmpfs delivery"));
        }
        if (d.mode() == DeliveryMode.FUSE && whyNoFuse == null) {
            try {
                startKeyFs(identity, issuers);
                return new FrontEnd(true, d.path(), TmpfsDelivery.Layout.PER_KEY);
            } catch (IOException e) {
                if (inherited != null) {
                    throw e;
                }
                whyNoFuse = "mounting FUSE at " + d.path() + " failed: " + e.getMessage();
            }
        }
        if (d.mode() == DeliveryMode.FUSE && !d.tmpfsFallback()) {
            throw new IOException(whyNoFuse);
        }
        Path dir = d.path();
        if (d.mode() == DeliveryMode.FUSE) {
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
        startTmpfs(identity, issuers, dir, root, layout, out);
        return new FrontEnd(false, dir, layout);
    }

    private LeaseManager startLeases(IssuerRegistry issuers, IdentityProvider identity, LeaseEvents frontEnd) {
        LeaseManager lm = new LeaseManager(issuers, core.policy(), core.clock(), core.scheduler(),
                new Random(new SecureRandom().nextLong()), LeaseEvents.of(new LoggingEvents(), core.audit(), frontEnd),
                identity::isAlive, killSwitch).start();
        boolean revokeOnShutdown = core.spec().revokeOnShutdown();
        core.components().add("leases", () -> {
            HandoverCoordinator.Handing h = handover.handing();
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

    /**
     * A key changed: a new key gets a new api_key inode (before any open is given it), and the
     * kernel drops the pages of the one it replaces, revoked or expired (before that is reported).
     */
    private static LeaseEvents pageCacheOf(KeyFs[] fs) {
        return new LeaseEvents() {
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
    }

    private void startKeyFs(IdentityProvider identity, IssuerRegistry issuers) throws IOException {
        Spec s = core.spec();
        // The lease core reports to KeyFS, which asks the lease core: KeyFS is made once the lease core is.
        KeyFs[] fs = new KeyFs[1];
        LeaseManager lm = startLeases(issuers, identity, pageCacheOf(fs));
        FuseSession.Options opts = FuseSession.Options.defaults("keywarden")
                .withRequestTimeout((int) s.delivery().fuseRequestTimeout().toSeconds()).onLost(mountLost::accept)
                .withIoUring(s.tuning().fuseIoUring());
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
            fs[0] = KeyFs.continuing(access(identity), core.clock(), inherited.keyFs());
            session = FuseSession.adopt(here, fs[0], inherited.fuse(), opts);
            LOG.info("took over {} from pid {}: {} leases, {} open files", here, inherited.fromPid(),
                    inherited.leases().size(), inherited.keyFs().openFiles().size());
        } else {
            fs[0] = new KeyFs(access(identity), core.clock());
            session = FuseSession.mount(s.delivery().path(), fs[0], opts);
            LOG.info("KeyFS at {}: requests through {}", s.delivery().path(), session.servesOverIoUring()
                    ? "FUSE io_uring (a takeover is refused; tuning.fuseIoUring: false keeps takeovers)" : "/dev/fuse reads");
        }
        fuseSession = session;
        KeyFs keyFs = fs[0];
        core.components().add(Component.of("delivery", () -> {
            HandoverCoordinator.Handing h = handover.handing();
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
                ? Optional.of("the FUSE mount at " + s.delivery().path() + " is gone")
                : Optional.empty()));
        keyFs.attach(session);
        core.readiness().ready("delivery");
    }

    /** The access core every front end asks (KeyFS, the gateway), built once after the lease core. */
    synchronized AccessDecider access(IdentityProvider identity) {
        if (access == null) {
            Spec s = core.spec();
            ExecutorService attest = Executors.newFixedThreadPool(s.tuning().attestThreads(), named("keywarden-attest"));
            ScheduledExecutorService timeouts = Executors.newSingleThreadScheduledExecutor(named("keywarden-open-timeout"));
            core.components().add("access", () -> {
                attest.shutdownNow();
                timeouts.shutdownNow();
            });
            attestPool = attest;
            access = new AccessDecider(core.policy(), identity, leases, core.audit(), core.clock(), s.tuning().openTimeout(),
                    attest, timeouts);
        }
        return access;
    }

    private void startTmpfs(IdentityProvider identity, IssuerRegistry issuers, Path dir, boolean root,
                            TmpfsDelivery.Layout layout, PrintWriter out) {
        TmpfsDelivery tmpfs;
        try {
            tmpfs = TmpfsDelivery.open(dir, root, layout);
        } catch (IOException e) {
            throw new InputProblem("keywarden: " + e.getMessage(), e);
        }
        // Added before the lease core: revocations at shutdown wipe files that still exist.
        core.components().add("delivery", tmpfs);
        core.readiness().ready("delivery");
        startLeases(issuers, identity, new TmpfsPublisher(tmpfs));
        for (Workload w : core.spec().policy().workloads()) {
            if (TmpfsDelivery.ownerOf(w).isEmpty()) {
                out.println("  workload " + w.name() + " has no unix:uid selector: tmpfs delivery cannot serve it");
            }
        }
        eager = true;
        ensureAll(core.spec().policy());
    }

    /** tmpfs delivery serves every workload with a uid eagerly, without waiting for an open (at start and on reloads). */
    void ensureAll(Policy p) {
        if (!eager) {
            return;
        }
        for (Workload w : p.workloads()) {
            if (TmpfsDelivery.ownerOf(w).isPresent()) {
                for (String k : w.keys()) {
                    leases.ensure(w, k);
                }
            }
        }
    }

    private static java.util.concurrent.ThreadFactory named(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }
}
