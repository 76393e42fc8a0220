package io.keywarden.daemon.config;

import io.keywarden.daemon.net.HostPort;
import io.keywarden.daemon.runtime.DeliveryMode;
import io.keywarden.daemon.runtime.Extensions;
import io.keywarden.daemon.runtime.IdentitySettings;
import io.keywarden.daemon.runtime.Tuning;
import io.keywarden.issuer.IssuerSpec;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * The daemon's configuration (`keywarden run --config`), validated and with every default applied.
 * The loader builds each component's own settings record ({@code GatewaySettings},
 * {@code FleetSettings}, {@code HookSettings}, {@code UsageApiSettings}, {@code CsiSettings},
 * {@code MetricsExport}, {@code IdentitySettings}, {@code Tuning}, each issuer type's spec); the
 * records here are only the file's own shape (delivery, audit, ops, admin), turned into the
 * runtime's {@code Spec} by {@code keywarden run}.
 */
public record Config(String node, Path policy, IdentitySettings identity, Map<String, IssuerSpec> issuers,
                     Delivery delivery, Audit audit, Ops ops, Admin admin, boolean revokeOnShutdown, Tuning tuning,
                     Extensions extensions) {

    public Config {
        issuers = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(issuers));
    }

    /** {@code requestTimeout}: the kernel's per-request FUSE timeout (6.14+); must exceed the issuer timeout. */
    public record Delivery(DeliveryMode mode, Path path, Duration requestTimeout) {
    }

    /** {@code retainBytes} 0 and {@code retainAge} null keep every segment; {@code group} may read the ledger (0640). */
    public record Audit(Path file, boolean stdout, long retainBytes, Duration retainAge, Optional<String> group) {
        public Audit(Path file, boolean stdout) {
            this(file, stdout, 0, null, Optional.empty());
        }
    }

    public record Ops(HostPort listen) {
    }

    /**
     * The admin API's socket, and the handover socket a successor started with {@code --takeover}
     * asks for the mount and the leases (root only; default: {@code handover.sock} beside the admin socket).
     */
    public record Admin(Path socket, Path handoverSocket) {
        public Admin(Path socket) {
            this(socket, socket.resolveSibling("handover.sock"));
        }
    }
}
