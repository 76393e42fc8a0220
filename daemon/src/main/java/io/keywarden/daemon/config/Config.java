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

    public record Audit(Path file, boolean stdout) {
    }

    public record Ops(HostPort listen) {
    }

    public record Admin(Path socket) {
    }
}
