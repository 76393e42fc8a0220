package io.keywarden.linux;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * Where the daemon may create files and sockets: only in a directory that no user but root (or the
 * daemon's own uid) can change, as sshd's StrictModes requires of a user's files. Every directory
 * from {@code /} to it must be owned by root or the daemon's uid; the directory itself must not be
 * writable by its group or others; an ancestor may be (as {@code /tmp} is) only when it is sticky, so
 * that nobody else can rename or replace the root-owned directory below it. A symbolic link on the
 * way must be owned by root or the daemon's uid and lie in such a directory. With that, nobody else
 * can plant a link or a file at a name the daemon is about to create; the daemon's own opens add
 * {@code O_NOFOLLOW}/{@code O_EXCL} on top.
 */
public final class SafePaths {
    private static final int S_IWGRP = 0020;
    private static final int S_IWOTH = 0002;
    private static final int S_ISVTX = 01000;
    private static final int MAX_LINKS = 40;

    private SafePaths() {
    }

    /** A directory another user could change, named with what it holds and why. */
    public static final class UnsafePathException extends IOException {
        public UnsafePathException(String message) {
            super(message);
        }
    }

    /** The directory only root and this daemon can change; private ({@code rwx------}) when it is made here. */
    public static final Set<PosixFilePermission> PRIVATE = PosixFilePermissions.fromString("rwx------");
    /** A directory others may enter (to reach a socket in it) but not change. */
    public static final Set<PosixFilePermission> SHARED = PosixFilePermissions.fromString("rwxr-xr-x");

    /**
     * Makes {@code dir} and any missing parents with {@code mode} (the umask cannot widen or narrow
     * it: each is set after it is made, while only this daemon can reach it), then checks it.
     * {@code what} names what goes in it, for the error.
     */
    public static Path directory(Path dir, Set<PosixFilePermission> mode, String what) throws IOException {
        Path abs = dir.toAbsolutePath().normalize();
        Path missing = abs;
        while (missing.getParent() != null && !Files.exists(missing.getParent(), LinkOption.NOFOLLOW_LINKS)) {
            missing = missing.getParent();
        }
        if (!Files.exists(abs, LinkOption.NOFOLLOW_LINKS)) {
            if (missing.getParent() != null) {
                check(missing.getParent(), what);
            }
            for (Path p = missing; ; p = p.resolve(abs.getName(p.getNameCount()))) {
                if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
                    Files.createDirectory(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
                    Files.getFileAttributeView(p, java.nio.file.attribute.PosixFileAttributeView.class,
                            LinkOption.NOFOLLOW_LINKS).setPermissions(mode);
                }
                if (p.equals(abs)) {
                    break;
                }
            }
        }
        check(abs, what);
        return abs;
    }

    /**
     * Replaces {@code file} by {@code content} atomically (a 0600 temporary beside it, written and
     * synced, then renamed over it), in a private directory checked first: a crash leaves the old
     * file or the new one, never half of one. {@code what} names it for an error.
     */
    public static void replaceFile(Path file, byte[] content, String what) throws IOException {
        directory(file.toAbsolutePath().getParent(), PRIVATE, what + " " + file);
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try (var ch = java.nio.channels.FileChannel.open(tmp, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.wrap(content));
            ch.force(true);
        }
        Files.move(tmp, file, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }

    /** Refuses {@code dir} (with its path and why) unless only root or this daemon's uid can change what is in it. */
    public static void check(Path dir, String what) throws IOException {
        check(dir.toAbsolutePath().normalize(), what, 0);
    }

    private static void check(Path abs, String what, int depth) throws IOException {
        if (depth > MAX_LINKS) {
            throw new UnsafePathException(what + ": too many symbolic links on the way to " + abs);
        }
        // The links on the lexical path: each owned by root or us, in a directory that passes.
        Path p = abs.getRoot();
        for (Path name : abs) {
            p = p.resolve(name);
            if (Files.isSymbolicLink(p)) {
                int owner = uid(p, false);
                if (owner != 0 && owner != me()) {
                    throw new UnsafePathException(what + ": " + p + " is a symbolic link owned by uid " + owner
                            + " (only root or uid " + me() + " may own a link on the way)");
                }
                check(p.getParent(), what, depth + 1);
            }
        }
        Path real;
        try {
            real = abs.toRealPath();
        } catch (IOException e) {
            throw new UnsafePathException(what + ": " + abs + " cannot be resolved: " + e.getMessage());
        }
        if (!Files.isDirectory(real)) {
            throw new UnsafePathException(what + ": " + real + " is not a directory");
        }
        Path at = real.getRoot();
        int count = real.getNameCount();
        for (int i = 0; i <= count; i++) {
            if (i > 0) {
                at = at.resolve(real.getName(i - 1));
            }
            int owner = uid(at, true);
            int mode = mode(at);
            boolean last = i == count;
            if (owner != 0 && owner != me()) {
                throw new UnsafePathException(what + ": " + at + " is owned by uid " + owner + ", which could replace"
                        + " what the daemon creates in it (only root or uid " + me() + " may own it)");
            }
            if ((mode & (S_IWGRP | S_IWOTH)) != 0 && (last || (mode & S_ISVTX) == 0)) {
                throw new UnsafePathException(what + ": " + at + " is writable by " + ((mode & S_IWOTH) != 0 ? "others"
                        : "its group") + String.format(" (mode %04o)", mode & 07777) + (last ? "" : " and not sticky")
                        + ": another user could plant a link or a file where the daemon creates one; use a directory"
                        + " only root can write (e.g. under /run or /var/lib)");
            }
        }
    }

    /** Binds a socket at the path it is given. */
    public interface Binder {
        void bind(Path at) throws IOException;
    }

    /**
     * Makes the Unix socket {@code socket} with {@code mode} before anyone can reach it: {@code binder}
     * binds it in a private directory ({@code rwx------}) beside it, where it gets its mode, and it is
     * then renamed into place (replacing a stale socket, never following a link there). The
     * socket's directory must pass {@link #check}.
     */
    public static void placeSocket(Path socket, Set<PosixFilePermission> mode, String what, Binder binder)
            throws IOException {
        Path abs = socket.toAbsolutePath().normalize();
        check(abs.getParent(), what);
        Path dir = Files.createTempDirectory(abs.getParent(), ".kw-sock-");
        Path at = dir.resolve("s");
        try {
            binder.bind(at);
            Files.setPosixFilePermissions(at, mode);
            if (Files.isDirectory(abs, LinkOption.NOFOLLOW_LINKS)) {
                throw new UnsafePathException(what + ": " + abs + " is a directory");
            }
            Files.move(at, abs, java.nio.file.StandardCopyOption.ATOMIC_MOVE, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(at);
            Files.deleteIfExists(dir);
        }
    }

    private static int uid(Path p, boolean follow) throws IOException {
        Object v = follow ? Files.getAttribute(p, "unix:uid") : Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        return (Integer) v;
    }

    private static int mode(Path p) throws IOException {
        return (Integer) Files.getAttribute(p, "unix:mode");
    }

    private static int me() {
        return LibC.geteuid();
    }
}
