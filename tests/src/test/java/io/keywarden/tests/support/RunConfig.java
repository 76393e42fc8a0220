package io.keywarden.tests.support;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** A `keywarden run` config for tests: Vault issuer, KeyFS at {@code mnt}, ledger and policy beside it. */
public final class RunConfig {
    private RunConfig() {
    }

    /**
     * Writes {@code dir/config.yaml} (policy {@code dir/policy.yaml}, ledger {@code dir/audit.jsonl},
     * leases revoked on shutdown) and returns it. {@code identity} is the YAML flow mapping of the
     * identity section, e.g. {@code {provider: dev, audience: vault}}.
     */
    public static Path vaultFuse(Path dir, String identity, String vaultAddress, String timeout, Path mnt, int opsPort,
                                 Path adminSocket) throws IOException {
        return Files.writeString(dir.resolve("config.yaml"), """
                node: it-node
                policy: policy.yaml
                identity: %s
                issuer:
                  provider: vault
                  vault: {address: "%s", authMount: jwt, timeout: %s}
                delivery: {mode: fuse, path: %s}
                audit: {file: audit.jsonl}
                ops: {listen: "127.0.0.1:%d"}
                admin: {socket: %s}
                revokeOnShutdown: true
                """.formatted(identity, vaultAddress, timeout, mnt, opsPort, adminSocket));
    }
}
