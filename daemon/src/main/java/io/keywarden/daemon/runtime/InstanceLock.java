package io.keywarden.daemon.runtime;

import io.keywarden.daemon.InputProblem;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * One daemon per mount, ledger and admin socket: an exclusive lock (fcntl, released by the kernel
 * when the holder dies, however it dies) on a lock file beside the resource, holding the owner's
 * pid. Taken before anything is touched, so a second instance exits with "already served by pid N"
 * instead of detaching a live mount, interleaving a ledger or stealing the kill switch; a mount left
 * by a crashed daemon has no live holder and is detached as stale.
 */
public final class InstanceLock implements AutoCloseable {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(InstanceLock.class);
    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;

    private InstanceLock(Path file, FileChannel channel, FileLock lock) {
        this.file = file;
        this.channel = channel;
        this.lock = lock;
    }

    /** The lock file for {@code resource}: {@code .<name>.keywarden-lock} in the same directory. */
    public static Path lockFileOf(Path resource) {
        Path abs = resource.toAbsolutePath().normalize();
        Path name = abs.getFileName();
        return abs.resolveSibling("." + (name == null ? "root" : name) + ".keywarden-lock");
    }

    /** Takes the lock of {@code resource} ({@code what} names it in messages), or refuses with exit 2. */
    public static InstanceLock acquire(Path resource, String what) throws IOException {
        Path file = lockFileOf(resource);
        io.keywarden.linux.SafePaths.directory(file.getParent(), io.keywarden.linux.SafePaths.PRIVATE,
                "the lock of " + what + " " + resource);
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE,
                java.nio.file.LinkOption.NOFOLLOW_LINKS);
        FileLock lock;
        try {
            lock = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            lock = null;
        }
        if (lock == null) {
            String owner;
            try {
                ByteBuffer b = ByteBuffer.allocate(256);
                ch.read(b, 0);
                owner = new String(b.array(), 0, b.position(), StandardCharsets.UTF_8).trim();
            } finally {
                ch.close();
            }
            throw new InputProblem(what + " " + resource + " is already served by " + (owner.isEmpty() ? "another process"
                    : owner) + " (lock " + file + "); stop it first");
        }
        ch.truncate(0);
        ch.write(ByteBuffer.wrap(("pid " + ProcessHandle.current().pid() + "\n").getBytes(StandardCharsets.UTF_8)), 0);
        ch.force(false);
        return new InstanceLock(file, ch, lock);
    }

    /** Releases the lock. The file stays: deleting it would let two later instances lock two different files. */
    @Override
    public void close() throws IOException {
        try {
            lock.release();
        } finally {
            channel.close();
        }
    }

    /** One daemon per mount, ledger and admin socket, decided before anything is touched. */
    static void acquireAll(Spec s, Components components) throws IOException {
        try {
            components.add("lock " + s.delivery().path(), acquire(s.delivery().path(), "the mount point"));
        } catch (java.nio.file.AccessDeniedException e) {
            LOG.debug("no lock beside {} (not ours to write): {}", s.delivery().path(), e.getMessage());
        }
        if (s.audit().file().isPresent()) {
            components.add("lock ledger", acquire(s.audit().file().get(), "the audit ledger"));
        }
        components.add("lock admin", acquire(s.adminSocket(), "the admin socket"));
    }
}
