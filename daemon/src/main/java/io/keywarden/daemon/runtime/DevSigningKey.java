package io.keywarden.daemon.runtime;

import com.nimbusds.jose.jwk.ECKey;
import io.keywarden.daemon.InputProblem;
import io.keywarden.issuer.federation.okta.ClientKeys;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * {@code keywarden dev --signing-key FILE}: the dev identity's signing key kept across restarts, so
 * its public JWKS ({@code keywarden jwks --key FILE}, or {@code /.well-known/jwks.json}) is
 * registered once with a provider's workload identity federation. Made (P-256, mode 0600) when
 * the file does not exist; never overwritten.
 */
final class DevSigningKey {
    private DevSigningKey() {
    }

    static ECKey loadOrCreate(Path file) {
        if (!Files.exists(file)) {
            try {
                Files.write(file, ClientKeys.generate().getBytes(StandardCharsets.US_ASCII), StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE);
                Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
            } catch (FileAlreadyExistsException e) {
                // made meanwhile: read it below
            } catch (IOException e) {
                throw new InputProblem("keywarden dev: --signing-key " + file + ": cannot create it: " + e.getMessage());
            }
        }
        try {
            if (Files.getPosixFilePermissions(file).stream().anyMatch(p -> p.name().startsWith("GROUP")
                    || p.name().startsWith("OTHERS"))) {
                throw new InputProblem("keywarden dev: --signing-key " + file + " is readable by others (mode "
                        + PosixFilePermissions.toString(Files.getPosixFilePermissions(file)) + "): chmod 600 it first");
            }
            return ClientKeys.read(file);
        } catch (IOException e) {
            throw new InputProblem("keywarden dev: --signing-key " + e.getMessage());
        }
    }
}
