package io.keywarden.issuer.vault;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/** How to reach Vault/OpenBao: its address, namespace, JWT auth mount, the CA to trust, the per-call timeout. */
public record VaultConnection(URI address, String namespace, String authMount, Optional<Path> caFile, Duration timeout) {
}
