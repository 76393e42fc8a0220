package io.keywarden.delivery;

import io.keywarden.linux.DirFd;
import io.keywarden.linux.LibC;
import io.keywarden.linux.Mounts;
import io.keywarden.linux.NativeException;
import io.keywarden.policy.Selector;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SecureDirectoryStream;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Arrays;
import java.util.Optional;
import java.util.Set;

/**
 * Delivery without FUSE: {@code <root>/<workload>/<key>/{api_key,expires_at,status[,headers]}} on a tmpfs
 * (or, in the {@link Layout#PER_KEY} layout a non-root {@code keywarden dev} uses, {@code <root>/<key>/…}
 * as under KeyFS, each key then served to one workload only),
 * owned by the workload's {@code unix:uid}, files 0400 and directories 0500, each file replaced
 * atomically (write a temporary file, chown, rename). Never on disk: as root the daemon mounts a
 * tmpfs at the root; otherwise it refuses a directory that is not memory-backed.
 */
public final class TmpfsDelivery implements AutoCloseable {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(TmpfsDelivery.class);
    private static final Set<String> MEMORY_FS = Set.of("tmpfs", "ramfs");

    /** Where a key's files go: under the workload's directory, or straight under the root (one workload a key). */
    public enum Layout { PER_WORKLOAD, PER_KEY }

    private final Path root;
    private final boolean mounted;
    private final Layout layout;
    /** PER_KEY: the workload each key directory serves; a second workload for the same key is refused. */
    private final java.util.Map<String, String> keyOwners = new java.util.concurrent.ConcurrentHashMap<>();
    /** The status line last written per key directory: an unchanged "ok" is not rewritten on every refresh. */
    private final java.util.Map<Path, String> statusWritten = new java.util.concurrent.ConcurrentHashMap<>();
    /** The directories this daemon made (or found) and gave to a uid: not looked at again on every refresh. */
    private final java.util.Map<Path, Integer> owners = new java.util.concurrent.ConcurrentHashMap<>();
    /** The key directories holding a {@code headers} file, so a key without headers costs no unlink per refresh. */
    private final Set<Path> headersWritten = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private TmpfsDelivery(Path root, boolean mounted, Layout layout) {
        this.root = root;
        this.mounted = mounted;
        this.layout = layout;
    }

    public static TmpfsDelivery open(Path root, boolean asRoot) throws IOException {
        return open(root, asRoot, Layout.PER_WORKLOAD);
    }

    /**
     * Prepares {@code root}: as root, mounts a private tmpfs there (reusing and wiping one a crashed
     * daemon left); otherwise checks that it already is memory-backed.
     */
    public static TmpfsDelivery open(Path root, boolean asRoot, Layout layout) throws IOException {
        Path r = root.toAbsolutePath().normalize();
        Files.createDirectories(r);
        if (asRoot) {
            Optional<Mounts.Mount> existing = Mounts.at(r);
            if (existing.isEmpty() || !existing.get().fsType().equals("tmpfs")) {
                Mounts.mount("keywarden", r, "tmpfs", LibC.MS_NOSUID | LibC.MS_NODEV | LibC.MS_NOEXEC,
                        "mode=0755,size=16m");
            }
            TmpfsDelivery d = new TmpfsDelivery(r, true, layout);
            d.wipeAll();
            return d;
        }
        Mounts.Mount m = Mounts.containing(r);
        if (!MEMORY_FS.contains(m.fsType())) {
            throw new IOException(r + " is on " + m.fsType() + " (" + m.mountPoint() + "), not on a tmpfs: keys must not"
                    + " touch disk. Run as root (keywarden mounts a tmpfs) or choose a directory on a tmpfs,"
                    + " e.g. under $XDG_RUNTIME_DIR");
        }
        return new TmpfsDelivery(r, false, layout);
    }

    public Path root() {
        return root;
    }

    /** The uid that owns a workload's files: its first {@code unix:uid} selector. */
    public static Optional<Integer> ownerOf(Workload w) {
        for (Selector s : w.selectors()) {
            if (s.kind() == Selector.Kind.UNIX_UID) {
                return Optional.of(Integer.parseUnsignedInt(s.value()));
            }
        }
        return Optional.empty();
    }

    public Layout layout() {
        return layout;
    }

    /** The directory of a workload's key: {@code <root>/<workload>/<key>} or, per key, {@code <root>/<key>}. */
    public Path dir(Workload w, String key) {
        return layout == Layout.PER_KEY ? root.resolve(key) : root.resolve(w.name()).resolve(key);
    }

    /** Writes a key, its expiry and {@code status ok}; each file is replaced atomically. */
    public void publish(Workload w, String key, IssuedKey issued) throws IOException {
        publish(w, key, issued, true);
    }

    private static final int FILE_MODE = 0400;

    /**
     * The same, with the key's {@code headers} file when it has headers to send, and a status that
     * says so when the credential cannot be revoked early at the provider.
     */
    public void publish(Workload w, String key, IssuedKey issued, boolean revocable) throws IOException {
        int uid = ownerOf(w).orElseThrow(() -> new IOException("workload " + w.name() + " has no unix:uid selector:"
                + " tmpfs delivery cannot know who owns its files"));
        Path p = dir(w, key);
        try (DirFd d = keyDir(w, key, uid)) {
            byte[] secret = issued.secretCopy();
            try {
                d.replace("api_key", secret, FILE_MODE, uid);
            } finally {
                Arrays.fill(secret, (byte) 0);
            }
            d.replace("expires_at", (KeyFs.rfc3339(issued.expiresAt()) + "\n").getBytes(StandardCharsets.US_ASCII),
                    FILE_MODE, uid);
            if (issued.headers().isEmpty()) {
                if (headersWritten.remove(p)) {
                    d.unlink("headers");
                }
            } else {
                d.replace("headers", Header.file(issued.headers()).getBytes(StandardCharsets.UTF_8), FILE_MODE, uid);
                headersWritten.add(p);
            }
            writeStatus(d, p, new LeaseStatus.Ok(revocable).line() + "\n", uid);
        }
    }

    /** Fail closed: removes {@code api_key} and says why in {@code status}. */
    public void withdraw(Workload w, String key, String reason) throws IOException {
        Optional<Integer> uid = ownerOf(w);
        if (uid.isEmpty()) {
            return;
        }
        try (DirFd d = keyDir(w, key, uid.get())) {
            d.unlink("api_key");
            d.unlink("expires_at");
            writeStatus(d, dir(w, key), "error: " + reason + "\n", uid.get());
        }
    }

    private void writeStatus(DirFd d, Path p, String line, int uid) throws IOException {
        if (line.equals(statusWritten.get(p)) && d.has("status")) {
            return;
        }
        d.replace("status", line.getBytes(StandardCharsets.UTF_8), FILE_MODE, uid);
        statusWritten.put(p, line);
    }

    /** Removes a workload's key directory (revocation). */
    public void wipe(Workload w, String key) throws IOException {
        statusWritten.remove(dir(w, key));
        headersWritten.remove(dir(w, key));
        owners.remove(dir(w, key));
        try (SecureDirectoryStream<Path> r = rootStream()) {
            if (layout == Layout.PER_KEY) {
                if (!w.name().equals(keyOwners.get(key))) {
                    return;   // another workload's key (refused at publish): nothing of this one's is there
                }
                deleteTree(r, Path.of(key));
                keyOwners.remove(key);
                return;
            }
            Path wd = Path.of(w.name());
            SecureDirectoryStream<Path> ws = directoryOrRemove(r, wd);
            if (ws == null) {
                owners.remove(root.resolve(w.name()));
                return;
            }
            try (ws) {
                deleteTree(ws, Path.of(key));
            }
            try {
                r.deleteDirectory(wd);
                owners.remove(root.resolve(w.name()));
            } catch (DirectoryNotEmptyException e) {
                // other keys of the workload stay
            }
        }
    }

    /**
     * The key's directory, opened for writing into: each level made if missing, given to the
     * workload's uid, and opened without following a symlink ({@link DirFd}). The directories are
     * the workload's (it may chmod them and put anything in them); a symlink or a file where a
     * directory should be fails the write, it never sends it elsewhere.
     */
    private DirFd keyDir(Workload w, String key, int uid) throws IOException {
        if (layout == Layout.PER_KEY) {
            String holder = keyOwners.putIfAbsent(key, w.name());
            if (holder != null && !holder.equals(w.name())) {
                throw new IOException("key " + key + " is served to workload " + holder + " at " + dir(w, key) + "; workload "
                        + w.name() + " cannot have it too in this layout (one workload a key)");
            }
        }
        // Root writes into 0500 directories (it overrides mode bits); a daemon running as the
        // workload's own uid (keywarden dev without root) must keep write permission on them: 0700,
        // still owner-only.
        int mode = LibC.geteuid() == 0 ? 0500 : 0700;
        try (DirFd r = DirFd.open(root)) {
            if (layout == Layout.PER_KEY) {
                return owned(r, key, root.resolve(key), uid, mode, true);
            }
            try (DirFd wd = owned(r, w.name(), root.resolve(w.name()), uid, mode, false)) {
                return owned(wd, key, dir(w, key), uid, mode, true);
            }
        }
    }

    private DirFd owned(DirFd parent, String name, Path p, int uid, int mode, boolean keyDir) throws IOException {
        DirFd d;
        try {
            d = parent.sub(name);
            if (keyDir && !owners.containsKey(p)) {
                headersWritten.add(p);   // found, not made by this daemon: it may hold a headers file from before
            }
        } catch (NoSuchFileException e) {
            parent.mkdir(name, mode);
            owners.remove(p);
            d = parent.sub(name);
        }
        try {
            // A policy change may give the workload another uid: its directories follow.
            if (!Integer.valueOf(uid).equals(owners.get(p))) {
                d.chown(uid);
                owners.put(p, uid);
            }
            return d;
        } catch (IOException | RuntimeException e) {
            d.close();
            throw e;
        }
    }

    private SecureDirectoryStream<Path> rootStream() throws IOException {
        java.nio.file.DirectoryStream<Path> s = Files.newDirectoryStream(root);
        if (s instanceof SecureDirectoryStream<Path> r) {
            return r;
        }
        s.close();
        throw new IOException("this JVM cannot open directories relative to a descriptor (no SecureDirectoryStream)");
    }

    private void wipeAll() throws IOException {
        statusWritten.clear();
        headersWritten.clear();
        owners.clear();
        keyOwners.clear();
        try (SecureDirectoryStream<Path> r = rootStream()) {
            java.util.List<Path> names = new java.util.ArrayList<>();
            for (Path e : r) {
                names.add(e.getFileName());
            }
            for (Path n : names) {
                deleteTree(r, n);
            }
        }
    }

    /**
     * The directory {@code name} under {@code parent}, opened without following a symlink; null when
     * there is none, or when a symlink or file stood in its place (then removed itself, never what
     * it names).
     */
    private static SecureDirectoryStream<Path> directoryOrRemove(SecureDirectoryStream<Path> parent, Path name)
            throws IOException {
        try {
            return parent.newDirectoryStream(name, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return null;
        } catch (java.nio.file.FileSystemException e) {
            try {
                parent.deleteFile(name);
            } catch (NoSuchFileException gone) {
                // removed meanwhile
            }
            return null;
        }
    }

    /**
     * Removes {@code name} under {@code parent} and everything in it, each level opened relative to
     * its parent without following a symlink: a symlink (or file) is removed itself, never what it
     * points to, even if the workload swaps one in while this runs.
     */
    private static void deleteTree(SecureDirectoryStream<Path> parent, Path name) throws IOException {
        SecureDirectoryStream<Path> d = directoryOrRemove(parent, name);
        if (d == null) {
            return;
        }
        try (d) {
            java.util.List<Path> entries = new java.util.ArrayList<>();
            for (Path e : d) {
                entries.add(e.getFileName());
            }
            for (Path e : entries) {
                BasicFileAttributes a;
                try {
                    a = d.getFileAttributeView(e, java.nio.file.attribute.BasicFileAttributeView.class,
                            LinkOption.NOFOLLOW_LINKS).readAttributes();
                } catch (NoSuchFileException gone) {
                    continue;
                }
                if (a.isDirectory()) {
                    deleteTree(d, e);
                } else {
                    try {
                        d.deleteFile(e);
                    } catch (NoSuchFileException gone) {
                        // removed meanwhile
                    }
                }
            }
        }
        try {
            parent.deleteDirectory(name);
        } catch (NoSuchFileException gone) {
            // removed meanwhile
        }
    }

    /** Wipes every key and, when the daemon mounted the tmpfs, unmounts it. */
    @Override
    public void close() throws IOException {
        try {
            wipeAll();
        } catch (NoSuchFileException e) {
            // already gone
        } finally {
            if (mounted) {
                try {
                    Mounts.detach(root);
                } catch (NativeException e) {
                    LOG.warn("unmounting " + root + " failed: " + e.getMessage());
                }
            }
        }
    }
}
