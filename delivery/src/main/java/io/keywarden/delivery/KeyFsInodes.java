package io.keywarden.delivery;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * KeyFS node ids. A node id packs three fields:
 * <pre>
 *   bits  0..3   FILE_MASK      0 the key's directory, 1..5 a file of {@link #FILES}
 *   bits  4..39  KEY_MASK       the key's index (a key keeps its index for the life of the mount)
 *   bits 40..62  WORKLOAD_SHIFT the workload's slot, on api_key inodes only (0: the shared inode)
 * </pre>
 * The root is 1 (index 0, file 1 never occurs for index 0 otherwise).
 */
final class KeyFsInodes {
    static final long ROOT = 1;
    static final String[] FILES = {"api_key", "expires_at", "spiffe_id", "status", "headers"};
    static final int DIRECTORY = 0;
    static final int API_KEY = 1;
    static final int EXPIRES_AT = 2;
    static final int SPIFFE_ID = 3;
    static final int STATUS = 4;
    static final int HEADERS = 5;

    private static final long FILE_MASK = 0xF;
    private static final int WORKLOAD_SHIFT = 40;
    private static final long KEY_MASK = ((1L << WORKLOAD_SHIFT) - 1) & ~FILE_MASK;

    private final Map<String, Long> inodeOfKey = new ConcurrentHashMap<>();
    private final Map<Long, String> keyOfInode = new ConcurrentHashMap<>();
    private final AtomicLong nextKeyIndex = new AtomicLong(1);
    private final Map<String, Long> slotOfWorkload = new ConcurrentHashMap<>();
    private final AtomicLong nextWorkloadSlot = new AtomicLong(1);

    /** The numbering so far, for a successor that serves the same mount: node ids the kernel holds stay valid. */
    record Numbering(Map<String, Long> keyIndex, long nextKeyIndex, Map<String, Long> workloadSlot, long nextWorkloadSlot) {
    }

    Numbering numbering() {
        Map<String, Long> keys = new java.util.HashMap<>();
        inodeOfKey.forEach((k, ino) -> keys.put(k, ino >>> 4));
        return new Numbering(keys, nextKeyIndex.get(), Map.copyOf(slotOfWorkload), nextWorkloadSlot.get());
    }

    /** Continues {@code n}; called before the first request is served. */
    void continueFrom(Numbering n) {
        n.keyIndex().forEach((k, index) -> {
            inodeOfKey.put(k, index << 4);
            keyOfInode.put(index << 4, k);
        });
        nextKeyIndex.set(n.nextKeyIndex());
        slotOfWorkload.putAll(n.workloadSlot());
        nextWorkloadSlot.set(n.nextWorkloadSlot());
    }

    /** The directory node of {@code key}, assigned on first use. */
    long directory(String key) {
        return inodeOfKey.computeIfAbsent(key, k -> {
            long ino = nextKeyIndex.getAndIncrement() << 4;
            keyOfInode.put(ino, k);
            return ino;
        });
    }

    boolean known(String key) {
        return inodeOfKey.containsKey(key);
    }

    /** The key a node belongs to, or null for the root and unknown nodes. */
    String keyOf(long node) {
        return keyOfInode.get(node & KEY_MASK);
    }

    static int fileOf(long node) {
        return (int) (node & FILE_MASK);
    }

    /** The name of a file node ({@code "."} for a directory). */
    static String nameOf(long node) {
        int f = fileOf(node);
        return f == DIRECTORY ? "." : FILES[Math.min(f, FILES.length) - 1];
    }

    /** A node of one of the four files of {@code key}'s directory, shared by every caller. */
    static long file(long directory, int file) {
        return directory + file;
    }

    /** The api_key inode of {@code workload} for {@code key}. */
    long apiKey(String key, String workload) {
        long slot = slotOfWorkload.computeIfAbsent(workload, w -> nextWorkloadSlot.getAndIncrement());
        return directory(key) + API_KEY | slot << WORKLOAD_SHIFT;
    }

    /** True for api_key inodes that belong to one workload (not the shared one). */
    static boolean isWorkloadOwn(long node) {
        return fileOf(node) == API_KEY && node >>> WORKLOAD_SHIFT != 0;
    }
}
