package io.keywarden.daemon.runtime;

import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.net.HostPort;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.policy.Policy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * What a daemon runs with, from {@code keywarden run}'s config or {@code keywarden dev}'s flags:
 * the policy as loaded ({@code policyFile}, when set, is watched), the identity provider, the
 * issuer instances by name, delivery, the ledger, the ops and admin endpoints (and the handover
 * socket of upgrades), and the tunables.
 */
public record Spec(String label, String node, Policy policy, Optional<Path> policyFile, IdentitySettings identity,
                   Map<String, IssuerSpec> issuers, DeliverySpec delivery, AuditSpec audit, HostPort listen,
                   Path adminSocket, Path handoverSocket, boolean revokeOnShutdown, Tuning tuning, Extensions extensions) {

    public Spec {
        issuers = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(issuers));
    }

    /**
     * Where keys are delivered. {@code tmpfsFallback}: when FUSE cannot be mounted, serve tmpfs
     * files instead (dev) rather than fail (run); {@code xdgRuntimeDir} is where an unprivileged
     * fallback goes.
     */
    public record DeliverySpec(DeliveryMode mode, Path path, boolean tmpfsFallback, Optional<Path> xdgRuntimeDir,
                               Duration fuseRequestTimeout) {
    }

    /** The ledger file (none: no ledger), whether records are echoed to stdout, and its options. */
    public record AuditSpec(Optional<Path> file, boolean stdout, Ledger.Options ledger) {
    }
}
