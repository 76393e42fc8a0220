package io.keywarden.daemon.dev;

import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.SelectorAttestor;
import io.keywarden.attestation.dev.DevIdentityProvider;
import io.keywarden.attestation.dev.JwtSigner;
import io.keywarden.daemon.BuildInfo;
import io.keywarden.daemon.admin.AdminServer;
import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.config.HostPort;
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
import io.keywarden.policy.Durations;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.Selector;
import io.keywarden.policy.Workload;
import io.keywarden.policy.yaml.Problem;
import io.keywarden.policy.yaml.ProblemsException;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** {@code keywarden dev}: dev identity + dev issuer + KeyFS (or tmpfs), nothing external. */
public final class DevRuntime implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DevRuntime.class);
    public static final Path DEFAULT_MOUNT = Path.of("/run/keywarden");

    /** What {@code keywarden dev} was asked for. */
    public record Options(Path mount, Path policyFile, Duration ttl, HostPort listen, Path audit, Path adminSocket,
                          Map<String, String> env) {
    }

    private final List<AutoCloseable> resources = new ArrayList<>();
    private final Metrics metrics = new Metrics();
    private final Readiness readiness = new Readiness();
    private AuditTrail audit;
    private final CountDownLatch stopped = new CountDownLatch(1);
    private LeaseManager leases;
    private SystemScheduler scheduler;
    private volatile boolean closed;

    private DevRuntime() {
    }

    /** The uid the default policy serves: the sudo caller's when run through sudo, else ours. */
    static int invokingUid(Map<String, String> env) {
        int euid = LibC.geteuid();
        String sudo = env.get("SUDO_UID");
        if (euid == 0 && sudo != null && sudo.matches("\\d{1,10}")) {
            return Integer.parseInt(sudo);
        }
        return euid;
    }

    static Policy defaultPolicy(int uid) {
        String yaml = """
                keys:
                  openai: {}
                workloads:
                  - name: uid-%d
                    spiffeId: spiffe://dev.keywarden.local/uid/%d
                    selectors: [unix:uid:%d]
                    keys: [openai]
                """.formatted(uid, uid, uid);
        try {
            return PolicyLoader.parse(yaml, "(default dev policy)");
        } catch (ProblemsException e) {
            throw new IllegalStateException("the built-in dev policy is invalid: " + e.getMessage(), e);
        }
    }

    public static DevRuntime start(Options o, PrintWriter out) throws IOException {
        Policy policy;
        if (o.policyFile() != null) {
            try {
                policy = PolicyLoader.load(o.policyFile());
            } catch (ProblemsException e) {
                throw new UserError(e.problems().stream().map(Problem::format).toList());
            }
        } else {
            policy = defaultPolicy(invokingUid(o.env()));
        }
        DevRuntime rt = new DevRuntime();
        try {
            rt.boot(policy, o, out);
            return rt;
        } catch (IOException | RuntimeException e) {
            rt.close();
            throw e;
        }
    }

    private void boot(Policy policy, Options o, PrintWriter out) throws IOException {
        Clock clock = Clock.systemUTC();
        boolean root = LibC.geteuid() == 0;
        String whyNoFuse = !root ? "not running as root (mounting FUSE needs CAP_SYS_ADMIN)"
                : !Files.exists(Path.of("/dev/fuse")) ? "/dev/fuse does not exist" : null;
        readiness.notReady("delivery", "not mounted yet");
        DevIdentityProvider identity = new DevIdentityProvider(new SelectorAttestor(ProcAttestor.system(), () -> policy),
                new JwtSigner("http://" + o.listen(), List.of("vault"), clock));
        resources.add(OpsServer.start(o.listen(), readiness, metrics, identity.signer()));
        if (o.audit() != null) {
            Ledger ledger = Ledger.open(o.audit(), node(o.env()), clock, 64L << 20, Duration.ofSeconds(1), null);
            resources.add(ledger);
            audit = new AuditTrail(ledger, metrics, readiness);
        } else {
            audit = new AuditTrail(null, metrics, readiness);
        }
        audit.record("daemon.started", Map.of("reason", "keywarden dev", "version", BuildInfo.load().version()));
        audit.record("policy.loaded", Map.of("reason", policy.source() + ": " + policy.keys().size() + " keys, "
                + policy.workloads().size() + " workloads"));
        scheduler = new SystemScheduler(clock, 4);
        DevIssuer issuer = new DevIssuer(o.ttl(), clock);
        Path mount = o.mount() != null ? o.mount() : DEFAULT_MOUNT;
        if (whyNoFuse == null) {
            leases = newLeases(issuer, policy, clock, identity, LeaseEvents.of(new LoggingEvents(), audit));
            KeyFs fs = new KeyFs(() -> policy, identity, leases, audit, clock, Duration.ofSeconds(10));
            try {
                FuseSession session = FuseSession.mount(mount, fs, FuseSession.Options.defaults("keywarden"));
                resources.add(session);
                readiness.ready("delivery");
                startAdmin(o, policy, "fuse " + mount);
                printReady(out, "KeyFS (FUSE)", mount, policy, o.ttl(), false);
                return;
            } catch (IOException e) {
                whyNoFuse = "mounting FUSE at " + mount + " failed: " + e.getMessage();
                leases.shutdown(false);
            }
        }
        Path dir = o.mount();
        if (dir == null) {
            String xdg = o.env().get("XDG_RUNTIME_DIR");
            if (root) {
                dir = DEFAULT_MOUNT;
            } else if (xdg != null && !xdg.isBlank()) {
                dir = Path.of(xdg, "keywarden");
            } else {
                throw new UserError("keywarden dev: " + whyNoFuse + ", and XDG_RUNTIME_DIR is not set for tmpfs delivery;"
                        + " pass --mount DIR on a tmpfs");
            }
        }
        out.println("keywarden dev: " + whyNoFuse + "; falling back to tmpfs delivery in " + dir);
        TmpfsDelivery tmpfs;
        try {
            tmpfs = TmpfsDelivery.open(dir, root);
        } catch (IOException e) {
            throw new UserError("keywarden dev: " + e.getMessage());
        }
        resources.add(tmpfs);
        readiness.ready("delivery");
        leases = newLeases(issuer, policy, clock, identity,
                LeaseEvents.of(new LoggingEvents(), audit, new TmpfsPublisher(tmpfs)));
        for (Workload w : policy.workloads()) {
            if (TmpfsDelivery.ownerOf(w).isEmpty()) {
                out.println("  workload " + w.name() + " has no unix:uid selector: tmpfs delivery cannot serve it");
                continue;
            }
            for (String k : w.keys()) {
                leases.ensure(w, k);
            }
        }
        startAdmin(o, policy, "tmpfs " + dir);
        printReady(out, "tmpfs", dir, policy, o.ttl(), true);
    }

    private LeaseManager newLeases(DevIssuer issuer, Policy policy, Clock clock, DevIdentityProvider identity,
                                   LeaseEvents events) {
        LeaseManager lm = new LeaseManager(new MeteredIssuer(issuer, metrics), () -> policy, clock, scheduler, new Random(new SecureRandom().nextLong()),
                events, identity::isAlive);
        for (String key : policy.keys().keySet()) {
            metrics.leaseGauges(key, lm, m -> m.view().stream().filter(v -> v.key().equals(key) && v.leaseId() != null).count(),
                    m -> m.view().stream().filter(v -> v.key().equals(key) && v.expiresAt() != null)
                            .mapToDouble(v -> Duration.between(clock.instant(), v.expiresAt()).toMillis() / 1000.0)
                            .min().orElse(Double.NaN));
        }
        return lm;
    }

    private void startAdmin(Options o, Policy policy, String delivery) throws IOException {
        Path socket = o.adminSocket();
        if (socket == null) {
            String xdg = o.env().get("XDG_RUNTIME_DIR");
            socket = LibC.geteuid() == 0 ? Path.of("/run/keywarden-admin/admin.sock")
                    : Path.of(xdg == null || xdg.isBlank() ? "/tmp" : xdg, "keywarden-admin.sock");
        }
        resources.add(AdminServer.start(socket, leases, () -> policy, Map.of("node", node(o.env()), "identity", "dev",
                "issuer", "dev", "delivery", delivery)));
        LOG.info("admin API on {}", socket);
    }

    static String node(Map<String, String> env) {
        String n = env.get("NODE_NAME");
        if (n != null && !n.isBlank()) {
            return n;
        }
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
            return "localhost";
        }
    }

    private static void printReady(PrintWriter out, String mode, Path at, Policy policy, Duration ttl, boolean tmpfs) {
        out.printf("keywarden dev: serving %s at %s (dev identity, dev issuer, key TTL %s). Ctrl-C to stop.%n", mode, at,
                Durations.format(ttl));
        for (Workload w : policy.workloads()) {
            String who = w.selectors().isEmpty() ? "nobody (no selectors)"
                    : String.join(" and ", w.selectors().stream().map(DevRuntime::describe).toList());
            for (String k : w.keys()) {
                Path file = tmpfs ? at.resolve(w.name()).resolve(k).resolve("api_key") : at.resolve(k).resolve("api_key");
                out.printf("  %s  <- readable by %s (%s)%n", file, who, w.spiffeId());
            }
        }
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

    public void awaitStop() throws InterruptedException {
        stopped.await();
    }

    /** Unmounts, revokes every lease, wipes tmpfs files. Safe to call twice. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        LOG.info("keywarden dev stopping: unmounting, revoking leases");
        for (int i = resources.size() - 1; i >= 0; i--) {
            if (resources.get(i) instanceof FuseSession s) {
                s.close();
            }
        }
        if (leases != null) {
            leases.shutdown(true);
        }
        if (audit != null) {
            try {
                audit.record("daemon.stopped", Map.of("reason", "shutdown"));
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
        LOG.info("keywarden dev stopped: mount released, leases revoked");
        stopped.countDown();
    }
}
