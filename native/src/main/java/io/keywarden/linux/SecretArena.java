package io.keywarden.linux;

import com.sun.jna.Pointer;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Off-heap memory for secrets: chunks of anonymous memory mapped once, {@code mlock}ed (never
 * written to swap), {@code MADV_DONTDUMP} (left out of core dumps) and {@code MADV_DONTFORK}, cut
 * into power-of-two slots from 64 bytes to 64 KiB. A freed slot is wiped before it is reused.
 * Locking needs CAP_IPC_LOCK or room under RLIMIT_MEMLOCK: without it the memory is still off the
 * heap and out of dumps, and {@link #locked()} says so.
 */
public final class SecretArena {
    private static final System.Logger LOG = System.getLogger(SecretArena.class.getName());
    private static final int CHUNK = 64 * 1024;
    private static final int MIN_SHIFT = 6;
    private static final int MAX_SHIFT = 16;
    private static final SecretArena SHARED = new SecretArena();

    /** One slot; {@link #free()} wipes it and gives it back. */
    public static final class Slot {
        private final SecretArena arena;
        private final Pointer pointer;
        private final int shift;
        /**
         * The slot's memory as a buffer, made once with the slot (a slice of its chunk's buffer), the
         * one way a secret's bytes are written and read ({@link #pointer} only wipes): a buffer asked
         * of JNA per copy is a JNI {@code NewDirectByteBuffer} each time, which was a
         * quarter of a cached KeyFS open's own work (a handle's copy of its key, by {@code perf}).
         * Used only with absolute indexes, so its position never moves.
         */
        private final ByteBuffer buffer;
        private boolean free;

        Slot(SecretArena arena, Pointer pointer, int shift, ByteBuffer buffer) {
            this.arena = arena;
            this.pointer = pointer;
            this.shift = shift;
            this.buffer = buffer;
        }

        ByteBuffer buffer() {
            return buffer;
        }

        void free() {
            arena.release(this);
        }
    }

    @SuppressWarnings("unchecked")
    private final Deque<Slot>[] freeSlots = new Deque[MAX_SHIFT + 1];
    private volatile boolean locked = true;
    private long mappedBytes;

    private SecretArena() {
        for (int i = MIN_SHIFT; i <= MAX_SHIFT; i++) {
            freeSlots[i] = new ArrayDeque<>();
        }
    }

    public static SecretArena shared() {
        return SHARED;
    }

    /** Whether every chunk so far could be locked in memory. */
    public boolean locked() {
        return locked;
    }

    public synchronized long mappedBytes() {
        return mappedBytes;
    }

    synchronized Slot allocate(int length) {
        if (length < 0 || length > (1 << MAX_SHIFT)) {
            throw new IllegalArgumentException("a secret of " + length + " bytes is outside 0.." + (1 << MAX_SHIFT));
        }
        int shift = MIN_SHIFT;
        while ((1 << shift) < length) {
            shift++;
        }
        Deque<Slot> q = freeSlots[shift];
        if (q.isEmpty()) {
            Pointer chunk = map();
            ByteBuffer whole = chunk.getByteBuffer(0, CHUNK);
            for (int at = 0; at < CHUNK; at += 1 << shift) {
                Slot s = new Slot(this, chunk.share(at), shift, whole.slice(at, 1 << shift));
                s.free = true;
                q.add(s);
            }
        }
        Slot s = q.poll();
        s.free = false;
        return s;
    }

    private synchronized void release(Slot s) {
        if (s.free) {
            return;
        }
        s.pointer.setMemory(0, 1L << s.shift, (byte) 0);
        s.free = true;
        freeSlots[s.shift].push(s);
    }

    private Pointer map() {
        Pointer p = LibC.mmap(null, CHUNK, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS, -1, 0);
        if (p == null || Pointer.nativeValue(p) == -1L) {
            throw new java.io.UncheckedIOException(new NativeException("mmap of secret memory", Errno.last()));
        }
        if (LibC.madvise(p, CHUNK, LibC.MADV_DONTDUMP) != 0 || LibC.madvise(p, CHUNK, LibC.MADV_DONTFORK) != 0) {
            LOG.log(System.Logger.Level.WARNING, "madvise of secret memory failed: " + Errno.name(Errno.last()));
        }
        if (LibC.mlock(p, CHUNK) != 0) {
            if (locked) {
                LOG.log(System.Logger.Level.WARNING, "secret memory cannot be locked (" + Errno.name(Errno.last())
                        + "): keys may be swapped out; give keywarden CAP_IPC_LOCK or a larger RLIMIT_MEMLOCK");
            }
            locked = false;
        }
        mappedBytes += CHUNK;
        return p;
    }
}
