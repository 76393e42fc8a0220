package io.keywarden.fuse;

import io.keywarden.linux.Mounts;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** A FUSE connection seen from outside its session: a stale mount to detach, its number, its abort. */
final class FuseConnection {
    private static final System.Logger LOG = System.getLogger(FuseConnection.class.getName());

    private FuseConnection() {
    }

    /** Detaches a FUSE mount left at {@code mp} by a crashed daemon (its reads fail with ENOTCONN). */
    static boolean detachStale(Path mp) throws IOException {
        var existing = Mounts.at(mp);
        if (existing.isPresent() && existing.get().fsType().startsWith("fuse")) {
            LOG.log(System.Logger.Level.INFO, "detaching stale " + existing.get().fsType() + " mount at " + mp);
            Mounts.detach(mp);
            return true;
        }
        return false;
    }

    /** The FUSE connection number (as under /sys/fs/fuse/connections), from the mount's st_dev; -1 if unknown. */
    static long idOf(Path mp) {
        try {
            long dev = ((Number) Files.getAttribute(mp, "unix:dev")).longValue();
            return (dev & 0xff) | ((dev >>> 12) & ~0xffL);
        } catch (IOException | UnsupportedOperationException e) {
            return -1;
        }
    }

    /**
     * Aborts connection {@code id} through fusectl (mounted first if needed): files still open on a
     * detached mount keep a connection alive, and its readers then get errors instead of waiting.
     */
    static void abort(long id) {
        if (id < 0) {
            return;
        }
        Path abort = Path.of("/sys/fs/fuse/connections", Long.toString(id), "abort");
        try {
            if (!Files.exists(abort)) {
                Mounts.mount("fusectl", Path.of("/sys/fs/fuse/connections"), "fusectl", 0, "");
            }
            Files.write(abort, "1".getBytes(StandardCharsets.US_ASCII));
        } catch (IOException e) {
            LOG.log(System.Logger.Level.WARNING, "could not abort FUSE connection " + id + ": " + e.getMessage());
        }
    }
}
