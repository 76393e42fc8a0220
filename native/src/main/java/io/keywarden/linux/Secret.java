package io.keywarden.linux;

import java.lang.ref.Cleaner;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Secret bytes kept off the Java heap, in memory that is locked (never swapped), left out of core
 * dumps and not inherited by children ({@link SecretArena}), and wiped when closed. The bytes never
 * become a {@code String}; {@link #toString()} says only how long they are. Closing is explicit
 * (a lease dropped, a file handle released); a secret that becomes unreachable unclosed is wiped
 * by a cleaner as a backstop. Reads and {@link #close()} are serialised, so a read racing a close
 * sees the bytes or an {@link IllegalStateException}, never memory reused for another secret.
 */
public final class Secret implements AutoCloseable {
    private static final Cleaner CLEANER = Cleaner.create();

    private final SecretArena.Slot slot;
    private final int length;
    private final Cleaner.Cleanable cleanable;
    private final AtomicBoolean closed = new AtomicBoolean();

    private Secret(SecretArena.Slot slot, int length) {
        this.slot = slot;
        this.length = length;
        this.cleanable = CLEANER.register(this, slot::free);
    }

    /** Copies {@code bytes[from, from+n)} off the heap; the caller wipes its array. */
    public static Secret copyOf(byte[] bytes, int from, int n) {
        SecretArena.Slot s = SecretArena.shared().allocate(n);
        s.buffer().put(0, bytes, from, n);
        return new Secret(s, n);
    }

    public static Secret copyOf(byte[] bytes) {
        return copyOf(bytes, 0, bytes.length);
    }

    /** A copy of this secret with a life of its own (e.g. one per open file); copied memory to memory. */
    public synchronized Secret duplicate() {
        ByteBuffer from = liveBuffer();
        SecretArena.Slot s = SecretArena.shared().allocate(length);
        s.buffer().put(0, from, 0, length);
        return new Secret(s, length);
    }

    public int length() {
        return length;
    }

    /** Copies up to {@code n} bytes from {@code offset} into {@code dst} at {@code dstAt}, memory to memory; returns how many. */
    public synchronized int copyTo(long offset, ByteBuffer dst, int dstAt, int n) {
        int from = (int) Math.min(Math.max(offset, 0), length);
        int count = Math.max(0, Math.min(n, length - from));
        if (count > 0) {
            dst.put(dstAt, liveBuffer(), from, count);
        }
        return count;
    }

    /** A heap copy for the few consumers that need an array (e.g. writing a file); the caller wipes it. */
    public synchronized byte[] toByteArray() {
        byte[] out = new byte[length];
        liveBuffer().get(0, out);
        return out;
    }

    public void updateDigest(MessageDigest md) {
        byte[] b = toByteArray();
        try {
            md.update(b);
        } finally {
            java.util.Arrays.fill(b, (byte) 0);
        }
    }

    public boolean isClosed() {
        return closed.get();
    }

    /** Its slot (this package's tests look past the secret's length into it). */
    SecretArena.Slot slot() {
        return slot;
    }

    /** The slot's buffer (absolute indexes only), while not wiped. */
    private ByteBuffer liveBuffer() {
        if (closed.get()) {
            throw new IllegalStateException("secret already wiped");
        }
        return slot.buffer();
    }

    /** Wipes the bytes and returns the memory; idempotent. */
    @Override
    public synchronized void close() {
        if (closed.compareAndSet(false, true)) {
            cleanable.clean();
        }
    }

    @Override
    public String toString() {
        return "Secret[" + length + " bytes]";
    }
}
