package io.keywarden.daemon.cli;

import io.keywarden.daemon.runtime.DefaultPaths;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** The {@code --admin-socket} option shared by the commands that talk to a running daemon. */
final class AdminSocketOption {
    @Option(names = "--admin-socket", paramLabel = "PATH",
            description = "The daemon's admin socket. Default: /run/keywarden-admin/admin.sock as root; otherwise the"
                    + " socket a non-root 'keywarden dev' of this user serves ($XDG_RUNTIME_DIR/keywarden-admin.sock"
                    + " or ~/.local/state/keywarden/admin.sock) when it exists.")
    Path socket;

    /** The socket named, or the one a daemon of this user would serve: a non-root dev's, else the system's. */
    Path path() {
        if (socket != null) {
            return socket;
        }
        if (DefaultPaths.euid() != 0) {
            Path mine = DefaultPaths.devAdminSocket(false, System.getenv());
            if (Files.exists(mine)) {
                return mine;
            }
        }
        return DefaultPaths.ADMIN_SOCKET;
    }
}
