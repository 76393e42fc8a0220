package io.keywarden.delivery;

import io.keywarden.linux.LibC;
import io.keywarden.linux.Mounts;
import io.keywarden.linux.NativeException;
import io.keywarden.policy.Selector;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
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

    /**
     * The same, with the key's {@code headers} file when it has headers to send, and a status that
     * says so when the credential cannot be revoked early at the provider.
     */
    public void publish(Workload w, String key, IssuedKey issued, boolean revocable) throws IOException {
        int uid = ownerOf(w).orElseThrow(() -> new IOException("workload " + w.name() + " has no unix:uid selector:"
                + " tmpfs delivery cannot know who owns its files"));
        inDirs(w, key, uid, d -> {
            byte[] secret = issued.secretCopy();
            try {
                replace(d, "api_key", secret, uid);
            } finally {
                Arrays.fill(secret, (byte) 0);
            }
            replace(d, "expires_at", (KeyFs.rfc3339(issued.expiresAt()) + "\n").getBytes(StandardCharsets.US_ASCII), uid);
            if (issued.headers().isEmpty()) {
                if (headersWritten.remove(d)) {
                    Files.deleteIfExists(d.resolve("headers"));
                }
            } else {
                replace(d, "headers", Header.file(issued.headers()).getBytes(StandardCharsets.UTF_8), uid);
                headersWritten.add(d);
            }
            writeStatus(d, new LeaseStatus.Ok(revocable).line() + "\n", uid);
        });
    }

    private interface InDir {
        void run(Path keyDir) throws IOException;
    }

    /**
     * Runs {@code action} in the key's directory, made if this daemon has not made it yet. The
     * directories are the workload's (it may chmod and empty them): one found gone is made again
     * and the action run once more.
     */
    private void inDirs(Workload w, String key, int uid, InDir action) throws IOException {
        Path d = ensureDirs(w, key, uid);
        try {
            action.run(d);
        } catch (NoSuchFileException e) {
            owners.remove(d);
            owners.remove(root.resolve(w.name()));
            statusWritten.remove(d);
            headersWritten.remove(d);
            action.run(ensureDirs(w, key, uid));
        }
    }

    /** Fail closed: removes {@code api_key} and says why in {@code status}. */
    public void withdraw(Workload w, String key, String reason) throws IOException {
        Optional<Integer> uid = ownerOf(w);
        if (uid.isEmpty()) {
            return;
        }
        inDirs(w, key, uid.get(), d -> {
            Files.deleteIfExists(d.resolve("api_key"));
            Files.deleteIfExists(d.resolve("expires_at"));
            writeStatus(d, "error: " + reason + "\n", uid.get());
        });
    }

    private void writeStatus(Path dir, String line, int uid) throws IOException {
        if (line.equals(statusWritten.get(dir)) && Files.exists(dir.resolve("status"), LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        replace(dir, "status", line.getBytes(StandardCharsets.UTF_8), uid);
        statusWritten.put(dir, line);
    }

    /** Removes a workload's key directory (revocation). */
    public void wipe(Workload w, String key) throws IOException {
        statusWritten.remove(dir(w, key));
        headersWritten.remove(dir(w, key));
        owners.remove(dir(w, key));
        if (layout == Layout.PER_KEY) {
            if (!w.name().equals(keyOwners.get(key))) {
                return;   // another workload's key (refused at publish): nothing of this one's is there
            }
            deleteTree(dir(w, key));
            keyOwners.remove(key);
            return;
        }
        deleteTree(dir(w, key));
        try {
            Files.deleteIfExists(root.resolve(w.name()));
            owners.remove(root.resolve(w.name()));
        } catch (DirectoryNotEmptyException e) {
            // other keys of the workload stay
        }
    }

    private Path ensureDirs(Workload w, String key, int uid) throws IOException {
        Path kd = dir(w, key);
        Path[] dirs = {root.resolve(w.name()), kd};
        if (layout == Layout.PER_KEY) {
            String holder = keyOwners.putIfAbsent(key, w.name());
            if (holder != null && !holder.equals(w.name())) {
                throw new IOException("key " + key + " is served to workload " + holder + " at " + kd + "; workload "
                        + w.name() + " cannot have it too in this layout (one workload a key)");
            }
            dirs = new Path[] {kd};
        }
        // Root writes into 0500 directories (it overrides mode bits); a daemon running as the
        // workload's own uid (keywarden dev without root) must keep write permission on them: 0700,
        // still owner-only.
        String mode = LibC.geteuid() == 0 ? "r-x------" : "rwx------";
        for (Path p : dirs) {
            if (Integer.valueOf(uid).equals(owners.get(p))) {
                continue;   // made and given to this uid before; gone since, the caller makes it again
            }
            if (!Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
                Files.createDirectory(p, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString(mode)));
                owners.remove(p);
            } else if (p.equals(kd)) {
                headersWritten.add(kd);   // found, not made: it may hold a headers file from before
            }
            // A policy change may give the workload another uid: its directories follow.
            if (!Integer.valueOf(uid).equals(owners.get(p))) {
                chown(p, uid);
                owners.put(p, uid);
            }
        }
        return kd;
    }

    private static final java.nio.file.attribute.FileAttribute<?> OWNER_READ_ONLY =
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("r--------"));

    private static void replace(Path dir, String name, byte[] content, int uid) throws IOException {
        // A name the workload (owner of the directory, so able to chmod it) cannot guess ahead and
        // squat; CREATE_NEW + NOFOLLOW refuse anything already there.
        Path tmp = dir.resolve("." + name + "." + Long.toHexString(java.util.concurrent.ThreadLocalRandom.current().nextLong()));
        boolean moved = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, Set.of(StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                    LinkOption.NOFOLLOW_LINKS), OWNER_READ_ONLY)) {
                ByteBuffer b = ByteBuffer.wrap(content);
                while (b.hasRemaining()) {
                    ch.write(b);
                }
            }
            chown(tmp, uid);
            Files.move(tmp, dir.resolve(name), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            moved = true;
        } finally {
            if (!moved) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    private static void chown(Path p, int uid) throws NativeException {
        if (LibC.chown(p.toString(), uid, -1) != 0) {
            throw new NativeException("chown(" + p + ")", io.keywarden.linux.Errno.last());
        }
    }

    private void wipeAll() throws IOException {
        statusWritten.clear();
        headersWritten.clear();
        owners.clear();
        keyOwners.clear();
        try (var entries = Files.list(root)) {
            for (Path p : (Iterable<Path>) entries::iterator) {
                deleteTree(p);
            }
        }
    }

    private static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        Files.walkFileTree(p, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.deleteIfExists(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException exc) throws IOException {
                Files.deleteIfExists(d);
                return FileVisitResult.CONTINUE;
            }
        });
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
