package io.keywarden.linux;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * An open directory, and what keywarden does inside one without ever following a symbolic link:
 * each sub-directory is opened {@code O_NOFOLLOW} relative to its parent's descriptor, each file
 * made, owned and renamed relative to its directory's ({@code openat}, {@code mkdirat},
 * {@code fchown}, {@code renameat}, {@code unlinkat}). A directory its owner may change (a
 * workload's, under tmpfs delivery) is then never a way for that owner to steer a root daemon's
 * writes elsewhere by swapping a directory for a symlink, before or while the daemon writes.
 */
public final class DirFd implements AutoCloseable {
    private final int fd;
    private final String path;

    private DirFd(int fd, String path) {
        this.fd = fd;
        this.path = path;
    }

    /** Opens a directory the caller trusts the whole path of (its own root). */
    public static DirFd open(Path dir) throws IOException {
        int fd = LibC.open(dir.toString(), LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_CLOEXEC, 0);
        if (fd < 0) {
            throw failure("open", dir.toString(), Errno.last());
        }
        return new DirFd(fd, dir.toString());
    }

    private static IOException failure(String call, String where, int errno) {
        if (errno == Errno.ENOENT) {
            return new NoSuchFileException(where);
        }
        if (errno == Errno.ELOOP || errno == Errno.ENOTDIR) {
            return new NativeException(call + "(" + where + "): not a directory (a symbolic link or a file put in its"
                    + " place is never followed)", errno);
        }
        return new NativeException(call + "(" + where + ")", errno);
    }

    private static void checkName(String name) {
        if (name.isEmpty() || name.equals(".") || name.equals("..") || name.indexOf('/') >= 0 || name.indexOf('\0') >= 0) {
            throw new IllegalArgumentException("not a single path component: '" + name + "'");
        }
    }

    /** The sub-directory {@code name}, opened without following a symlink; NoSuchFileException when absent. */
    public DirFd sub(String name) throws IOException {
        checkName(name);
        int d = LibC.openat(fd, name, LibC.O_RDONLY | LibC.O_DIRECTORY | LibC.O_NOFOLLOW | LibC.O_CLOEXEC, 0);
        if (d < 0) {
            throw failure("openat", path + "/" + name, Errno.last());
        }
        return new DirFd(d, path + "/" + name);
    }

    /** Makes the sub-directory {@code name} with {@code mode} (less the umask); false if something is there already. */
    public boolean mkdir(String name, int mode) throws IOException {
        checkName(name);
        if (LibC.mkdirat(fd, name, mode) == 0) {
            return true;
        }
        int e = Errno.last();
        if (e == Errno.EEXIST) {
            return false;
        }
        throw failure("mkdirat", path + "/" + name, e);
    }

    /** Gives this directory to {@code uid} (its group unchanged). */
    public void chown(int uid) throws IOException {
        if (LibC.fchown(fd, uid, -1) != 0) {
            throw failure("fchown", path, Errno.last());
        }
    }

    /**
     * Replaces {@code name} atomically: a new file with an unguessable temporary name (created
     * {@code O_EXCL|O_NOFOLLOW}, so nothing already there is reused), {@code content} written,
     * owned by {@code uid}, then renamed over {@code name}. A failure removes the temporary file.
     */
    public void replace(String name, byte[] content, int mode, int uid) throws IOException {
        checkName(name);
        String tmp = "." + name + "." + Long.toHexString(java.util.concurrent.ThreadLocalRandom.current().nextLong());
        int f = LibC.openat(fd, tmp, LibC.O_WRONLY | LibC.O_CREAT | LibC.O_EXCL | LibC.O_NOFOLLOW | LibC.O_CLOEXEC, mode);
        if (f < 0) {
            throw failure("openat", path + "/" + tmp, Errno.last());
        }
        boolean done = false;
        try {
            try (com.sun.jna.Memory buf = new com.sun.jna.Memory(Math.max(1, content.length))) {
                buf.write(0, content, 0, content.length);
                try {
                    long off = 0;
                    while (off < content.length) {
                        long n = LibC.write(f, buf.share(off), content.length - off);
                        if (n < 0) {
                            int e = Errno.last();
                            if (e == Errno.EINTR) {
                                continue;
                            }
                            throw failure("write", path + "/" + tmp, e);
                        }
                        off += n;
                    }
                } finally {
                    buf.clear();
                }
                if (LibC.fchown(f, uid, -1) != 0) {
                    throw failure("fchown", path + "/" + tmp, Errno.last());
                }
            } finally {
                LibC.close(f);
            }
            if (LibC.renameat(fd, tmp, fd, name) != 0) {
                throw failure("renameat", path + "/" + name, Errno.last());
            }
            done = true;
        } finally {
            if (!done) {
                LibC.unlinkat(fd, tmp, 0);
            }
        }
    }

    /** Removes the file (or symlink) {@code name}; false if there was none. */
    public boolean unlink(String name) throws IOException {
        checkName(name);
        if (LibC.unlinkat(fd, name, 0) == 0) {
            return true;
        }
        int e = Errno.last();
        if (e == Errno.ENOENT) {
            return false;
        }
        throw failure("unlinkat", path + "/" + name, e);
    }

    /** Whether {@code name} exists here (not following a symlink). */
    public boolean has(String name) {
        checkName(name);
        try (com.sun.jna.Memory buf = new com.sun.jna.Memory(256)) {
            return LibC.statx(fd, name, LibC.AT_SYMLINK_NOFOLLOW, 0, buf) == 0;
        }
    }

    @Override
    public String toString() {
        return path;
    }

    @Override
    public void close() {
        LibC.close(fd);
    }
}
