package io.keywarden.attestation;

import io.keywarden.linux.FileIdentity;
import io.keywarden.linux.LibC;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * SHA-256 of executables, cached by the file's full identity (device, inode, size, mtime and
 * ctime): a binary is hashed once however many processes run it, and a rewrite in place is seen
 * even when its mtime was set back, because ctime cannot be. The digest is computed from a
 * descriptor of {@code /proc/PID/exe} (the very file the process runs, in any mount namespace,
 * deleted or not) whose identity must be the one the decision was made on.
 */
public final class ExeDigests {
    private static final int MAX_ENTRIES = 4096;
    private final Map<FileIdentity, CompletableFuture<Optional<String>>> cache = new ConcurrentHashMap<>();

    /**
     * The digest of the executable of {@code pid}, provided it is still the file {@code expected};
     * empty when it cannot be read or is another file now (an exec since attestation).
     */
    public Optional<String> digest(String procExe, FileIdentity expected) {
        int fd = LibC.open(procExe, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        if (fd < 0) {
            return Optional.empty();
        }
        try {
            Optional<FileIdentity> now = FileIdentity.ofFd(fd);
            if (now.isEmpty() || !now.get().equals(expected)) {
                return Optional.empty();
            }
            FileIdentity id = now.get();
            CompletableFuture<Optional<String>> known = cache.get(id);
            if (known != null) {
                return known.join();
            }
            if (cache.size() > MAX_ENTRIES) {
                cache.clear();
            }
            CompletableFuture<Optional<String>> mine = new CompletableFuture<>();
            CompletableFuture<Optional<String>> f = cache.putIfAbsent(id, mine);
            if (f != null) {
                return f.join();
            }
            Optional<String> d = hash(Path.of("/proc/self/fd/" + fd));
            // The file may have changed while it was read: keep the digest only if its identity held.
            if (d.isPresent() && !FileIdentity.ofFd(fd).map(id::equals).orElse(false)) {
                d = Optional.empty();
            }
            mine.complete(d);
            if (d.isEmpty()) {
                cache.remove(id, mine);
            }
            return d;
        } finally {
            LibC.close(fd);
        }
    }

    /** True when the digest of the file {@code id} is known (asking for it reads no more than its identity). */
    public boolean known(FileIdentity id) {
        CompletableFuture<Optional<String>> f = cache.get(id);
        return f != null && f.isDone();
    }

    static Optional<String> hash(Path file) {
        try (FileChannel in = FileChannel.open(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
            while (in.read(buf) > 0) {
                buf.flip();
                md.update(buf);
                buf.clear();
            }
            return Optional.of(HexFormat.of().formatHex(md.digest()));
        } catch (IOException e) {
            return Optional.empty();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
