package io.keywarden.delivery;

import io.keywarden.delivery.KeyFs.Generation;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * KeyFS node ids. A node id packs three fields:
 * <pre>
 *   bits  0..3   FILE_MASK        0 the key's directory, 1..5 a file of {@link #FILES}
 *   bits  4..39  KEY_MASK         the key's index (a key keeps its index for the life of the mount)
 *   bits 40..55  WORKLOAD_SHIFT   the workload's slot, on api_key inodes only (0: the shared inode)
 *   bits 56..62  GENERATION_SHIFT the key's generation for that workload, on its api_key inodes only
 * </pre>
 * The root is 1 (index 0, file 1 never occurs for index 0 otherwise).
 *
 * <p>A workload's api_key gets a new inode each time its key changes (a new generation): an inode's
 * page cache only ever holds the one key of its generation, and a descriptor, tied to its inode,
 * never reads a later key. The generation's full count goes in the LOOKUP answer's
 * {@code generation}: when the 7 bits wrap (128 changes later) and a node id comes back, the kernel
 * sees another generation and drops the inode it may still hold under that id.
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
    private static final int GENERATION_SHIFT = 56;
    private static final long GENERATION_MASK = 0x7FL << GENERATION_SHIFT;
    /** Workload slots fit in 16 bits: 65,535 workloads per mount. */
    static final long MAX_WORKLOAD_SLOT = (1L << (GENERATION_SHIFT - WORKLOAD_SHIFT)) - 1;

    private final Map<String, Long> inodeOfKey = new ConcurrentHashMap<>();
    private final Map<Long, String> keyOfInode = new ConcurrentHashMap<>();
    private final AtomicLong nextKeyIndex = new AtomicLong(1);
    private final Map<String, Long> slotOfWorkload = new ConcurrentHashMap<>();
    private final AtomicLong nextWorkloadSlot = new AtomicLong(1);

    /** The current generation of each workload's api_key inode, by its node id without generation bits. */
    private final Map<Long, Generation> generations = new ConcurrentHashMap<>();
    /** The count of a generation not yet in the map: 0, or 1 after a predecessor that had no generations. */
    private volatile long firstCount;

    /** The numbering so far, for a successor that serves the same mount: node ids the kernel holds stay valid. */
    record Numbering(Map<String, Long> keyIndex, long nextKeyIndex, Map<String, Long> workloadSlot, long nextWorkloadSlot,
                     Map<Long, Generation> generations) {
    }

    Numbering numbering() {
        Map<String, Long> keys = new java.util.HashMap<>();
        inodeOfKey.forEach((k, ino) -> keys.put(k, ino >>> 4));
        return new Numbering(keys, nextKeyIndex.get(), Map.copyOf(slotOfWorkload), nextWorkloadSlot.get(),
                Map.copyOf(generations));
    }

    /**
     * Continues {@code n}; called before the first request is served. A predecessor without
     * generations ({@code n.generations()} null) served api_key without the page cache, whatever
     * its inodes hold: every api_key starts at generation 1, so no open of this daemon is served on
     * one of its inodes.
     */
    void continueFrom(Numbering n) {
        if (n.generations() == null) {
            firstCount = 1;
        } else {
            generations.putAll(n.generations());
        }
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
        // Looked up first: a lambda that captures is an object per call (through a method handle,
        // for the daemon's C1 compiler), and nearly every call finds the key.
        Long known = inodeOfKey.get(key);
        if (known != null) {
            return known;
        }
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

    /** The api_key inode of {@code workload} for {@code key}: its current generation's. */
    long apiKey(String key, String workload) {
        return current(base(key, workload));
    }

    private long base(String key, String workload) {
        Long known = slotOfWorkload.get(workload);
        long slot = known != null ? known : slotOfWorkload.computeIfAbsent(workload, w -> nextWorkloadSlot.getAndIncrement());
        if (slot > MAX_WORKLOAD_SLOT) {
            throw new IllegalStateException("more than " + MAX_WORKLOAD_SLOT + " workloads on one mount");
        }
        return directory(key) + API_KEY | slot << WORKLOAD_SHIFT;
    }

    /** The node of the current generation of the api_key inode {@code node} is one generation of. */
    long current(long node) {
        long base = node & ~GENERATION_MASK;
        return base | (count(base) & 0x7F) << GENERATION_SHIFT;
    }

    private long count(long base) {
        Generation g = generations.get(base);
        return g == null ? firstCount : g.count();
    }

    /** The full count of the generation of {@code node} when it is the current one (the LOOKUP's generation), else 0. */
    long generationOf(long node) {
        return isWorkloadOwn(node) && current(node) == node ? count(node & ~GENERATION_MASK) : 0;
    }

    /** The length of the key {@code node} serves, when it is the current generation and has served one; else -1. */
    int length(long node) {
        if (!isWorkloadOwn(node) || current(node) != node) {
            return -1;
        }
        Generation g = generations.get(node & ~GENERATION_MASK);
        return g == null ? -1 : g.length();
    }

    /**
     * {@code workload}'s key for {@code key} is now the one of {@code fingerprint} (issued, or met at
     * an open): a generation that has served no key takes it; one that served another key is
     * retired for a new generation. The node to serve it on, and, in {@code retired[0]}, the node
     * retired (0 when none).
     */
    long serve(String key, String workload, String fingerprint, int length, long nowMillis, long[] retired) {
        long base = base(key, workload);
        retired[0] = 0;
        Generation served = generations.get(base);
        if (served != null && fingerprint.equals(served.fingerprint()) && !goneKeys.contains(fingerprint)) {
            // Every open of a cached key: no lock taken.
            return base | (served.count() & 0x7F) << GENERATION_SHIFT;
        }
        long[] gone = {0};
        boolean[] refused = {false};
        Generation now = generations.compute(base, (b, g) -> {
            if (goneKeys.contains(fingerprint)) {   // an open decided before its key was revoked
                refused[0] = true;
                return g;
            }
            long count = g == null ? firstCount : g.count();
            if (g == null || g.fingerprint() == null) {
                goneNodes.remove(b | (count & 0x7F) << GENERATION_SHIFT);
                return new Generation(count, fingerprint, length, nowMillis);
            }
            if (g.fingerprint().equals(fingerprint)) {
                return g;
            }
            gone[0] = b | (count & 0x7F) << GENERATION_SHIFT;
            goneNodes.remove(b | ((count + 1) & 0x7F) << GENERATION_SHIFT);
            return new Generation(count + 1, fingerprint, length, nowMillis);
        });
        retired[0] = gone[0];
        return refused[0] ? 0 : base | (now.count() & 0x7F) << GENERATION_SHIFT;
    }

    /** The keys revoked or expired lately (fingerprints), never served again; and the nodes that served them. */
    private final java.util.Set<String> goneKeys = ConcurrentHashMap.newKeySet();
    private final java.util.Set<Long> goneNodes = ConcurrentHashMap.newKeySet();

    /** Whether {@code node} served a key revoked or expired (until it serves another, 128 keys later). */
    boolean gone(long node) {
        return goneNodes.contains(node);
    }

    /**
     * {@code workload}'s key of {@code fingerprint} for {@code key} is gone (revoked, expired): if it
     * is the one served, its generation is retired for a new one that serves nothing yet. The node
     * retired, or 0 (another key is served by now, or none was).
     */
    long retire(String key, String workload, String fingerprint) {
        long base = base(key, workload);
        long[] gone = {0};
        generations.compute(base, (b, g) -> {
            if (goneKeys.size() >= 4096) {
                goneKeys.clear();
            }
            goneKeys.add(fingerprint);
            if (g == null || g.fingerprint() == null || !g.fingerprint().equals(fingerprint)) {
                return g;
            }
            gone[0] = b | (g.count() & 0x7F) << GENERATION_SHIFT;
            goneNodes.add(gone[0]);
            return new Generation(g.count() + 1, null, -1, 0);
        });
        return gone[0];
    }

    /**
     * Whether {@code node} is served through the page cache: the current generation, whose key's
     * length it has answered for longer than the kernel keeps attributes (twice over). Before, a
     * size it answered as an upper bound may still be the kernel's file size, and a cached read
     * would return the key padded with zeros: such opens are direct I/O.
     */
    boolean cacheable(long node, long nowMillis) {
        if (!isWorkloadOwn(node) || current(node) != node) {
            return false;
        }
        Generation g = generations.get(node & ~GENERATION_MASK);
        return g != null && g.fingerprint() != null && nowMillis - g.sinceMillis() >= CACHE_AFTER_MILLIS;
    }

    /** Twice the validity KeyFS gives names and attributes (5 s). */
    static final long CACHE_AFTER_MILLIS = 10_000;

    /** True for api_key inodes that belong to one workload (not the shared one), of any generation. */
    static boolean isWorkloadOwn(long node) {
        return fileOf(node) == API_KEY && (node & ~GENERATION_MASK) >>> WORKLOAD_SHIFT != 0;
    }
}
