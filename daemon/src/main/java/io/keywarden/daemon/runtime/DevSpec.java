package io.keywarden.daemon.runtime;

import io.keywarden.daemon.InputProblem;
import io.keywarden.daemon.net.HostPort;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.daemon.audit.Ledger;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.policy.KeySpec;
import java.util.List;
import io.keywarden.linux.LibC;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.yaml.Problem;
import io.keywarden.policy.yaml.ProblemsException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/** {@code keywarden dev}: dev identity + dev issuers + KeyFS (tmpfs fallback), nothing external. */
public final class DevSpec {
    public static final Path DEFAULT_MOUNT = io.keywarden.daemon.runtime.DefaultPaths.MOUNT;

    private DevSpec() {
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

    /**
     * The dev issuer instances for {@code policy}: one per instance its keys name (each a dev
     * issuer of that name, so a production policy runs unchanged), or one named {@code dev} when
     * no key names any.
     */
    public static Map<String, IssuerSpec> devIssuers(Policy policy, Duration ttl) {
        Map<String, IssuerSpec> out = new java.util.LinkedHashMap<>();
        for (KeySpec k : policy.keys().values()) {
            k.issuer().ifPresent(name -> out.putIfAbsent(name, new io.keywarden.issuer.dev.DevType.Spec(name, ttl)));
        }
        if (out.isEmpty()) {
            out.put("dev", new io.keywarden.issuer.dev.DevType.Spec("dev", ttl));
        }
        return out;
    }

    /**
     * {@code keywarden dev}'s daemon. {@code realIssuers}, when given ({@code --issuers real
     * --config FILE}), are the config's instances; otherwise every instance is a dev issuer.
     */
    public static Spec of(Path mount, Path policyFile, Duration ttl, HostPort listen, Path audit, Path adminSocket,
                          Map<String, String> env, Duration fuseRequestTimeout, Map<String, IssuerSpec> realIssuers,
                          Extensions extensions) {
        return of(mount, policyFile, ttl, listen, audit, adminSocket, env, fuseRequestTimeout, realIssuers, extensions,
                Optional.empty(), Optional.empty());
    }

    /** The same, with {@code --signing-key} (a dev signing key kept in a file) and {@code --issuer-url}. */
    public static Spec of(Path mount, Path policyFile, Duration ttl, HostPort listen, Path audit, Path adminSocket,
                          Map<String, String> env, Duration fuseRequestTimeout, Map<String, IssuerSpec> realIssuers,
                          Extensions extensions, Optional<Path> signingKey, Optional<String> issuerUrl) {
        Policy policy;
        if (policyFile != null) {
            try {
                policy = PolicyLoader.load(policyFile);
            } catch (ProblemsException e) {
                throw new InputProblem(e.problems().stream().map(Problem::format).toList());
            }
        } else {
            policy = defaultPolicy(invokingUid(env));
        }
        Map<String, IssuerSpec> issuers = realIssuers != null ? realIssuers : devIssuers(policy, ttl);
        List<Problem> problems = IssuerRegistry.check(issuers, policy);
        if (!problems.isEmpty()) {
            throw new InputProblem(problems.stream().map(Problem::format).toList());
        }
        if (realIssuers == null && extensions.gateway().isPresent()) {
            List<String> nowhere = policy.keys().keySet().stream()
                    .filter(k -> !extensions.gateway().get().upstreams().containsKey(k)).toList();
            if (!nowhere.isEmpty()) {
                throw new InputProblem("keywarden dev: the gateway would send dev keys (sk-dev-…) for " + String.join(", ", nowhere)
                        + " to the provider, which refuses them: name where they go with --upstream "
                        + nowhere.get(0) + "=URL (a local stub or mock server), or serve real credentials with"
                        + " --issuers real --config FILE");
            }
        }
        boolean root = LibC.geteuid() == 0;
        String xdg = env.get("XDG_RUNTIME_DIR");
        Optional<Path> xdgDir = xdg == null || xdg.isBlank() ? Optional.empty() : Optional.of(Path.of(xdg));
        Path admin = adminSocket != null ? adminSocket : defaultAdminSocket(root, env);
        String node = env.getOrDefault("NODE_NAME", "").isBlank() ? hostName() : env.get("NODE_NAME");
        return new Spec("keywarden dev", node, policy, Optional.ofNullable(policyFile),
                new IdentitySettings(IdentitySettings.Provider.DEV, "vault", null, signingKey.map(Path::toAbsolutePath), issuerUrl), issuers,
                new Spec.DeliverySpec(DeliveryMode.FUSE, mount != null ? mount : DEFAULT_MOUNT, true, xdgDir,
                        fuseRequestTimeout),
                new Spec.AuditSpec(Optional.of(audit != null ? audit : defaultLedger(root, env)), false,
                        Ledger.Options.of(KeywardenRuntime.LEDGER_SEGMENT_BYTES, KeywardenRuntime.LEDGER_FSYNC)),
                listen, admin, admin.resolveSibling(root ? "handover.sock"
                        : admin.getFileName().toString().startsWith("keywarden-") ? "keywarden-handover.sock" : "handover.sock"), true,
                Tuning.DEFAULT, extensions);
    }

    /** See {@link io.keywarden.daemon.runtime.DefaultPaths#devAdminSocket}. */
    public static Path defaultAdminSocket(boolean root, Map<String, String> env) {
        return io.keywarden.daemon.runtime.DefaultPaths.devAdminSocket(root, env);
    }

    /** See {@link io.keywarden.daemon.runtime.DefaultPaths#devLedger}. */
    static Path defaultLedger(boolean root, Map<String, String> env) {
        return io.keywarden.daemon.runtime.DefaultPaths.devLedger(root, env);
    }

    static String hostName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
            return "localhost";
        }
    }
}
