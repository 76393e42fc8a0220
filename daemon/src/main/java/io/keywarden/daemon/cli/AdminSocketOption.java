package io.keywarden.daemon.cli;

import io.keywarden.daemon.config.ConfigLoader;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The {@code --admin-socket} option shared by the commands that talk to a running daemon. */
final class AdminSocketOption {
    @Option(names = "--admin-socket", paramLabel = "PATH",
            description = "The daemon's admin socket (default /run/keywarden-admin/admin.sock).")
    Path socket = ConfigLoader.DEFAULT_ADMIN_SOCKET;
}
