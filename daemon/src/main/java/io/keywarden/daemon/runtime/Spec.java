package io.keywarden.daemon.runtime;

import io.keywarden.daemon.config.Config;
import io.keywarden.daemon.config.HostPort;
import io.keywarden.policy.Policy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * What a daemon runs with (the policy as loaded; {@code policyFile}, when set, is watched), from {@code keywarden run}'s config or {@code keywarden dev}'s flags.
 * {@code devTtl} is the dev issuer's lease TTL; {@code vault} is set for the Vault issuer.
 */
public record Spec(String label, String node, Policy policy, Config.IdentityProvider identity, String audience,
                   Path spireSocket, Config.IssuerProvider issuer, Optional<Config.Vault> vault, Duration devTtl,
                   Config.DeliveryMode delivery, Path deliveryPath, boolean tmpfsFallback, HostPort listen,
                   Optional<Path> audit, boolean auditStdout, Path adminSocket, boolean revokeOnShutdown,
                   Optional<Path> xdgRuntimeDir, Optional<Path> policyFile, Duration fuseRequestTimeout,
                   io.keywarden.daemon.audit.Ledger.Options ledger) {
}
