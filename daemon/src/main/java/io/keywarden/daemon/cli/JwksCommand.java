package io.keywarden.daemon.cli;

import io.keywarden.issuer.federation.okta.ClientKeys;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The public JWKS of client assertion keys (Okta's {@code private_key_jwt}), to configure the
 * authorization server once for every node; {@code --generate} makes a key file first.
 */
@Command(name = "jwks", description = "Print the public JWKS of signing key files (issuers.<name>.signingKeyFile), to"
        + " give the authorization server (Okta: the app's JWKS); --generate FILE makes a new P-256 key file first.")
final class JwksCommand implements Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--key", paramLabel = "FILE", description = "A signing key file (private JWK or PEM); repeat for a"
            + " rotation: every key is published.")
    List<Path> keys = new ArrayList<>();

    @Option(names = "--generate", paramLabel = "FILE", description = "Write a new EC P-256 private key (JWK, mode 0600)"
            + " to FILE, which must not exist, and include it.")
    Path generate;

    @Override
    public Integer call() {
        List<Path> files = new ArrayList<>();
        if (generate != null) {
            try {
                Files.write(generate, ClientKeys.generate().getBytes(StandardCharsets.US_ASCII), StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE);
                Files.setPosixFilePermissions(generate, PosixFilePermissions.fromString("rw-------"));
            } catch (FileAlreadyExistsException e) {
                throw new UserError("--generate " + generate + ": the file exists (a key is never overwritten)");
            } catch (IOException e) {
                throw new UserError("--generate " + generate + ": " + e.getMessage());
            }
            spec.commandLine().getErr().println("wrote a new P-256 signing key to " + generate + " (mode 0600)");
            files.add(generate);
        }
        files.addAll(keys);
        if (files.isEmpty()) {
            throw new UserError("name a key file with --key FILE (or make one with --generate FILE)");
        }
        try {
            spec.commandLine().getOut().println(ClientKeys.jwksJson(List.of(ClientKeys.load(files, Clock.systemUTC()))));
        } catch (IOException e) {
            throw new UserError(e.getMessage());
        }
        return 0;
    }
}
