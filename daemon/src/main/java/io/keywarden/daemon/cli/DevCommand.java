package io.keywarden.daemon.cli;

import io.keywarden.daemon.UserError;
import io.keywarden.daemon.config.HostPort;
import io.keywarden.daemon.runtime.DevSpec;
import io.keywarden.daemon.runtime.KeywardenRuntime;
import io.keywarden.policy.Durations;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "dev", description = "The embedded default: dev identity, dev issuer and KeyFS; no external service.")
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

    @Option(names = "--config", paramLabel = "FILE", description = "A config whose 'issuers:' --issuers real uses.")
    Path config;

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
        java.util.Map<String, io.keywarden.daemon.config.IssuerSpec> real = null;
        switch (issuers) {
            case "dev" -> {
                if (config != null) {
                    throw new UserError("keywarden dev: --config is only used with --issuers real");
                }
            }
            case "real" -> {
                if (config == null) {
                    throw new UserError("keywarden dev: --issuers real needs --config FILE (its 'issuers:' section)");
                }
                real = RunCommand.loadConfig(config).issuers();
            }
            default -> throw new UserError("keywarden dev: --issuers must be dev or real, not '" + issuers + "'");
        }
        KeywardenRuntime rt = KeywardenRuntime.start(DevSpec.of(mount, policy, keyTtl, ops, audit, adminSocket,
                System.getenv(), fuseTimeout, real), spec.commandLine().getOut());
        Runtime.getRuntime().addShutdownHook(new Thread(rt::close, "keywarden-shutdown"));
        Signals.onStop(rt::close);
        rt.awaitStop();
        return rt.exitCode();
    }
}
