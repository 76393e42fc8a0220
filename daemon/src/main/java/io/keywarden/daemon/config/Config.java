package io.keywarden.daemon.config;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/** The daemon's configuration (`keywarden run --config`), validated and with every default applied. */
public record Config(String node, Path policy, Identity identity, Map<String, IssuerSpec> issuers, Delivery delivery,
                     Audit audit, Ops ops, Admin admin, boolean revokeOnShutdown, Tuning tuning) {

    public Config {
        issuers = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(issuers));
    }

    public enum IdentityProvider { SPIRE, DEV }

    public enum DeliveryMode { FUSE, TMPFS }

    public record Identity(IdentityProvider provider, String audience, Path spireAdminSocket) {
    }

    /** How to reach one Vault/OpenBao (an instance of type vault). */
    public record Vault(URI address, String namespace, String authMount, Optional<Path> caFile, Duration timeout) {
    }

    /** {@code requestTimeout}: the kernel's per-request FUSE timeout (6.14+); must exceed the issuer timeout. */
    public record Delivery(DeliveryMode mode, Path path, java.time.Duration requestTimeout) {
    }

    /** {@code retainBytes} 0 and {@code retainAge} null keep every segment; {@code group} may read the ledger (0640). */
    public record Audit(Path file, boolean stdout, long retainBytes, java.time.Duration retainAge,
                        java.util.Optional<String> group) {
        public Audit(Path file, boolean stdout) {
            this(file, stdout, 0, null, java.util.Optional.empty());
        }
    }

    public record Ops(HostPort listen) {
    }

    public record Admin(Path socket) {
    }

    /**
     * The daemon's tunables ({@code tuning:}), every one with a default that suits a node of a few
     * hundred workloads. {@code fuseWorkers} 0 means two per CPU (at least 4).
     */
    public record Tuning(int fuseWorkers, int issuerThreads, int attestThreads, Duration openTimeout,
                         Duration readinessInterval, Duration policyPollInterval, Duration spireTimeout) {
        public static final Tuning DEFAULT = new Tuning(0, 8, 4, Duration.ofSeconds(10), Duration.ofSeconds(10),
                Duration.ofSeconds(2), Duration.ofSeconds(5));

        public Tuning withOpenTimeout(Duration d) {
            return new Tuning(fuseWorkers, issuerThreads, attestThreads, d, readinessInterval, policyPollInterval,
                    spireTimeout);
        }
    }
}
