package io.keywarden.daemon.cli;

import io.keywarden.daemon.runtime.Extensions;
import io.keywarden.daemon.gateway.GatewaySettings;
import io.keywarden.daemon.csi.CsiSettings;
import io.keywarden.daemon.net.HostPort;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import io.keywarden.daemon.runtime.DevSpec;
import io.keywarden.daemon.runtime.KeywardenRuntime;
import io.keywarden.policy.Durations;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "dev", description = "The embedded default: dev identity, dev issuer and KeyFS; no external service.",
        footer = {"%nExamples:", "  sudo keywarden dev                      # KeyFS at /run/keywarden for the invoking user",
                "  keywarden dev                           # without root: tmpfs files in $XDG_RUNTIME_DIR/keywarden",
                "  keywarden dev --gateway 127.0.0.1:8787 --upstream openai=http://127.0.0.1:8080   # to a local mock",
                "  keywarden dev --issuers real --config dev-bao.yaml   # real keys from a local OpenBao"})
final class DevCommand implements Callable<Integer> {

    @Option(names = "--mount", paramLabel = "DIR", description = "Where to mount (default /run/keywarden as root).")
    Path mount;

    @Option(names = "--policy", paramLabel = "FILE", description = "Policy file (default: one key for the invoking user).")
    Path policy;

    @Option(names = "--ttl", paramLabel = "DUR", defaultValue = "5m", description = "Lease TTL of dev keys (default 5m).")
    String ttl;

    @Option(names = "--listen", paramLabel = "HOST:PORT", defaultValue = "127.0.0.1:9464",
            description = "Metrics, health and dev JWKS (default 127.0.0.1:9464).")
    String listen;

    @Option(names = "--request-timeout", paramLabel = "DUR", defaultValue = "60s",
            description = "FUSE request timeout asked of the kernel (6.14+): a stuck daemon fails readers after this; 0s for none (default 60s).")
    String requestTimeout;

    @Option(names = "--audit", paramLabel = "FILE", description = "Audit ledger file.")
    Path audit;

    @Option(names = "--admin-socket", paramLabel = "PATH", description = "Admin API socket.")
    Path adminSocket;

    @Option(names = "--issuers", paramLabel = "dev|real", defaultValue = "dev",
            description = "dev (default): every issuer instance the policy names is a dev issuer; real: the instances"
                    + " of --config's 'issuers:' (e.g. a local OpenBao), with dev identity.")
    String issuers;

    @Option(names = "--config", paramLabel = "FILE", description = "A config whose gateway, usage, policyHook and"
            + " metrics sections are used, and whose 'issuers:' --issuers real uses.")
    Path config;

    @Option(names = "--gateway", paramLabel = "HOST:PORT", description = "Serve the LLM gateway on this loopback"
            + " address (e.g. 127.0.0.1:8787).")
    String gateway;

    @Option(names = "--gateway-socket", paramLabel = "PATH", description = "Serve the LLM gateway on this Unix socket.")
    Path gatewaySocket;

    @Option(names = "--csi-socket", paramLabel = "PATH", description = "Serve the CSI node plugin csi.keywarden.io on"
            + " this Unix socket.")
    Path csiSocket;

    @Option(names = "--upstream", paramLabel = "KEY=URL", description = "The gateway's upstream for a key (repeatable);"
            + " default: the provider of the key's issuer type (https://api.openai.com for dev keys).")
    java.util.List<String> upstreams = new java.util.ArrayList<>();

    @Option(names = "--signing-key", paramLabel = "FILE", description = "Sign the dev identity's JWT-SVIDs with the P-256"
            + " key in FILE (made, mode 0600, when it does not exist), so they verify across restarts: register its"
            + " public JWKS (keywarden jwks --key FILE) once with a provider's workload identity federation.")
    Path signingKey;

    @Option(names = "--issuer-url", paramLabel = "URL", description = "The 'iss' of dev JWT-SVIDs and the issuer of the"
            + " discovery document (default http://<--listen>); the URL a provider's federation is told.")
    String issuerUrl;

    @CommandLine.Mixin
    UpgradeOptions upgrade = new UpgradeOptions();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Duration keyTtl;
        try {
            keyTtl = Durations.parse(ttl);
        } catch (IllegalArgumentException e) {
            throw new UserError("keywarden dev: --ttl: " + e.getMessage());
        }
        if (keyTtl.compareTo(Duration.ofSeconds(10)) < 0 || keyTtl.compareTo(Duration.ofDays(1)) > 0) {
            throw new UserError("keywarden dev: --ttl must be between 10s and 24h");
        }
        HostPort ops;
        try {
            ops = HostPort.parse(listen);
        } catch (IllegalArgumentException e) {
            throw new UserError("keywarden dev: --listen: " + e.getMessage());
        }
        Duration fuseTimeout;
        try {
            fuseTimeout = Durations.parse(requestTimeout);
        } catch (IllegalArgumentException e) {
            throw new UserError("keywarden dev: --request-timeout: " + e.getMessage());
        }
        if (fuseTimeout.isNegative() || fuseTimeout.toSeconds() > 65535) {
            throw new UserError("keywarden dev: --request-timeout must be between 0s (none) and 65535s");
        }
        java.util.Map<String, io.keywarden.issuer.IssuerSpec> real = null;
        switch (issuers) {
            case "dev" -> {
            }
            case "real" -> {
                if (config == null) {
                    throw new UserError("keywarden dev: --issuers real needs --config FILE (its 'issuers:' section)");
                }
                real = RunCommand.loadConfig(config).issuers();
            }
            default -> throw new UserError("keywarden dev: --issuers must be dev or real, not '" + issuers + "'");
        }
        Extensions extensions = config != null ? RunCommand.loadConfig(config).extensions() : Extensions.NONE;
        extensions = withGatewayFlags(extensions);
        if (csiSocket != null) {
            extensions = extensions.withCsi(Optional.of(new CsiSettings(csiSocket.toAbsolutePath(), Optional.empty())));
        }
        return Serving.serve(DevSpec.of(mount, policy, keyTtl, ops, audit, adminSocket, System.getenv(), fuseTimeout,
                real, extensions, Optional.ofNullable(signingKey), Optional.ofNullable(issuerUrl).map(DevCommand::issuerUrl)),
                spec.commandLine().getOut(), upgrade.takeover, upgrade.afterHandover);
    }

    private static String issuerUrl(String u) {
        try {
            java.net.URI uri = new java.net.URI(u);
            if (!("https".equals(uri.getScheme()) || "http".equals(uri.getScheme())) || uri.getHost() == null
                    || uri.getQuery() != null || uri.getFragment() != null) {
                throw new UserError("keywarden dev: --issuer-url " + u + " is not an http(s) URL without query or fragment");
            }
        } catch (java.net.URISyntaxException e) {
            throw new UserError("keywarden dev: --issuer-url " + u + " is not a URL: " + e.getReason());
        }
        return u.endsWith("/") ? u.substring(0, u.length() - 1) : u;
    }

    /** {@code --gateway}, {@code --gateway-socket} and {@code --upstream} over the config's gateway, if any. */
    private Extensions withGatewayFlags(Extensions e) {
        if (gateway == null && gatewaySocket == null && upstreams.isEmpty()) {
            return e;
        }
        GatewaySettings base = e.gateway().orElse(new GatewaySettings(Optional.empty(), Optional.empty(), Map.of(),
                Optional.empty(), GatewaySettings.DEFAULT_MAX_BODY, GatewaySettings.DEFAULT_TIMEOUT, Optional.empty()));
        Optional<HostPort> listen = base.listen();
        if (gateway != null) {
            try {
                listen = Optional.of(HostPort.parse(gateway));
            } catch (IllegalArgumentException x) {
                throw new UserError("keywarden dev: --gateway: " + x.getMessage());
            }
            String h = listen.get().host();
            if (!(h.equals("localhost") || h.startsWith("127.") || h.equals("::1"))) {
                throw new UserError("keywarden dev: --gateway " + gateway + " is not a loopback address");
            }
        }
        Optional<Path> socket = gatewaySocket != null ? Optional.of(gatewaySocket.toAbsolutePath()) : base.socket();
        if (listen.isEmpty() && socket.isEmpty()) {
            throw new UserError("keywarden dev: --upstream needs --gateway or --gateway-socket");
        }
        Map<String, GatewaySettings.Upstream> ups = new LinkedHashMap<>(base.upstreams());
        for (String u : upstreams) {
            int eq = u.indexOf('=');
            if (eq <= 0) {
                throw new UserError("keywarden dev: --upstream '" + u + "' is not KEY=URL");
            }
            try {
                ups.put(u.substring(0, eq), new GatewaySettings.Upstream(io.keywarden.daemon.config.ConfigLoader.httpUriOf(
                        u.substring(eq + 1)), GatewaySettings.UpstreamAuth.BEARER));
            } catch (IllegalArgumentException x) {
                throw new UserError("keywarden dev: --upstream: " + x.getMessage());
            }
        }
        return new Extensions(Optional.of(new GatewaySettings(listen, socket, ups, base.caFile(),
                base.maxBodyBytes(), base.timeout(), base.mtls(), base.limits(), base.socketRelay())), e.usage(), e.policyHook(), e.metrics(), e.csi(),
                e.fleet());
    }
}
