package io.keywarden.daemon.admin;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The operator's blocks, by SPIFFE ID (stable across policy edits, unlike workload names),
 * persisted so that a restart does not lift them: a JSON object {spiffe_id: reason}, 0600,
 * replaced atomically (write, rename) on every change.
 */
public final class Blocks {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private final Map<String, String> bySpiffeId = new LinkedHashMap<>();

    private Blocks(Path file) {
        this.file = file;
    }

    /** Loads {@code file} (absent: no blocks). A file that cannot be read is an error: blocks are never dropped silently. */
    public static Blocks load(Path file) throws IOException {
        Blocks b = new Blocks(file);
        io.keywarden.linux.SafePaths.directory(file.toAbsolutePath().getParent(), io.keywarden.linux.SafePaths.PRIVATE,
                "the block list " + file);
        if (Files.exists(file)) {
            try {
                b.bySpiffeId.putAll(JSON.readValue(file.toFile(), new TypeReference<Map<String, String>>() {
                }));
            } catch (IOException e) {
                throw new IOException("the block list " + file + " cannot be read (" + e.getMessage()
                        + "); fix or remove it: blocks are never lifted silently");
            }
        }
        return b;
    }

    public synchronized Map<String, String> all() {
        return Map.copyOf(bySpiffeId);
    }

    public synchronized void put(String spiffeId, String reason) throws IOException {
        bySpiffeId.put(spiffeId, reason);
        save();
    }

    public synchronized boolean remove(String spiffeId) throws IOException {
        boolean was = bySpiffeId.remove(spiffeId) != null;
        save();
        return was;
    }

    private void save() throws IOException {
        io.keywarden.linux.SafePaths.replaceFile(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(bySpiffeId),
                "the block list");
    }
}
