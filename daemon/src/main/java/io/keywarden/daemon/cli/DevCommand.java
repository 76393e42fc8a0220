package io.keywarden.daemon.cli;

import io.keywarden.daemon.NotYetAvailable;
import java.nio.file.Path;
import java.util.concurrent.Callable;
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

    @Option(names = "--audit", paramLabel = "FILE", description = "Audit ledger file.")
    Path audit;

    @Option(names = "--admin-socket", paramLabel = "PATH", description = "Admin API socket.")
    Path adminSocket;

    @Override
    public Integer call() {
        if (policy != null) {
            PolicyCommand.load(policy);
        }
        throw new NotYetAvailable("keywarden dev");
    }
}
