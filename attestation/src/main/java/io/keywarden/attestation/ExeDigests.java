package io.keywarden.attestation;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * SHA-256 of executables, cached by (device, inode, size, mtime) so that a binary is hashed once
 * however many processes run it; concurrent callers for one binary share one computation.
 * The file is read through {@code /proc/PID/exe}, which reaches the running binary even when it
 * was deleted or lives in another mount namespace.
 */
public final class ExeDigests {
    private record Identity(Object dev, Object ino, long size, Object mtime) {
    }

    private static final int MAX_ENTRIES = 4096;
    private final Map<Identity, CompletableFuture<Optional<String>>> cache = new ConcurrentHashMap<>();

    public Optional<String> digest(Path procExe) {
        Identity id;
        try {
            Map<String, Object> a = Files.readAttributes(procExe, "unix:dev,ino,size,lastModifiedTime");
            id = new Identity(a.get("dev"), a.get("ino"), ((Number) a.get("size")).longValue(), a.get("lastModifiedTime"));
        } catch (IOException | UnsupportedOperationException e) {
            return Optional.empty();
        }
        if (cache.size() > MAX_ENTRIES) {
            cache.clear();
        }
        CompletableFuture<Optional<String>> mine = new CompletableFuture<>();
        CompletableFuture<Optional<String>> f = cache.putIfAbsent(id, mine);
        if (f == null) {
            Optional<String> d = hash(procExe);
            mine.complete(d);
            if (d.isEmpty()) {
                cache.remove(id, mine);
            }
            return d;
        }
        return f.join();
    }

    static Optional<String> hash(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[64 * 1024];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
            return Optional.of(HexFormat.of().formatHex(md.digest()));
        } catch (IOException e) {
            return Optional.empty();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }
}
