package io.keywarden.daemon.runtime;

import java.nio.file.Path;
import java.util.Map;

/**
 * Where keywarden puts things when not told, in one place for the daemon and the CLI. Light on
 * purpose: a CLI call reads these without loading the config loader (or JNA, or a YAML parser).
 */
public final class DefaultPaths {
    public static final Path ADMIN_SOCKET = Path.of("/run/keywarden-admin/admin.sock");
    public static final Path MOUNT = Path.of("/run/keywarden");

    private DefaultPaths() {
    }

    /**
     * The effective uid, from {@code /proc/self/status} (no JNA on a CLI call; the JDK's
     * {@code UnixSystem} answers 0 for a uid without a passwd entry). -1 when unreadable.
     */
    public static long euid() {
        try {
            for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Uid:")) {
                    return Long.parseLong(line.split("\\s+")[2]);
                }
            }
        } catch (java.io.IOException | RuntimeException e) {
            // below
        }
        return -1;
    }

    /**
     * {@code keywarden dev}'s admin socket when not told: the system's as root; otherwise
     * {@code $XDG_RUNTIME_DIR/keywarden-admin.sock}, or without it beside the ledger in the user's
     * state directory (never in a directory others may write, such as /tmp). {@code status},
     * {@code revoke} and {@code unblock} look there too.
     */
    public static Path devAdminSocket(boolean root, Map<String, String> env) {
        if (root) {
            return ADMIN_SOCKET;
        }
        String xdg = env.get("XDG_RUNTIME_DIR");
        return xdg != null && !xdg.isBlank() ? Path.of(xdg).resolve("keywarden-admin.sock")
                : devLedger(false, env).resolveSibling("admin.sock");
    }

    /**
     * Where {@code keywarden dev} keeps its ledger when not told: every denial and grant is on
     * record even on a laptop. Root: /var/lib/keywarden/dev-audit.jsonl; otherwise
     * $XDG_STATE_HOME/keywarden/audit.jsonl (default ~/.local/state).
     */
    public static Path devLedger(boolean root, Map<String, String> env) {
        if (root) {
            return Path.of("/var/lib/keywarden/dev-audit.jsonl");
        }
        String state = env.get("XDG_STATE_HOME");
        Path base = state != null && !state.isBlank() ? Path.of(state)
                : Path.of(env.getOrDefault("HOME", System.getProperty("user.home")), ".local", "state");
        return base.resolve("keywarden").resolve("audit.jsonl");
    }
}
