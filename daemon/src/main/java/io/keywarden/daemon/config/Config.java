package io.keywarden.daemon.config;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/** The daemon's configuration (`keywarden run --config`), validated and with every default applied. */
public record Config(String node, Path policy, Identity identity, Issuer issuer, Delivery delivery, Audit audit,
                     Ops ops, Admin admin, boolean revokeOnShutdown) {

    public enum IdentityProvider { SPIRE, DEV }

    public enum IssuerProvider { VAULT, DEV }

    public enum DeliveryMode { FUSE, TMPFS }

    public record Identity(IdentityProvider provider, String audience, Path spireAdminSocket) {
    }

    public record Issuer(IssuerProvider provider, Optional<Vault> vault) {
    }

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
}
