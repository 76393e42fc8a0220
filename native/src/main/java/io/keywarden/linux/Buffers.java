package io.keywarden.linux;

import java.nio.ByteBuffer;

/**
 * Copies and clears of a few dozen bytes between direct buffers, eight bytes at a time. A bulk
 * {@code ByteBuffer.put} ends in {@code Unsafe.copyMemory0}, a native call that C1 (and the
 * interpreter, while the daemon's C2 has not compiled a method yet) does not turn into a plain copy:
 * on a FUSE request's path (its header in, its answer out, a submission entry cleared) that call cost
 * more than the bytes it moved (by perf, 1.9 µs of an open on C1).
 */
public final class Buffers {
    /** Above this, the bulk copy's native call is cheaper than the loop. */
    static final int SMALL = 256;

    private Buffers() {}

    /**
     * Copies {@code length} bytes from {@code src} at {@code from} to {@code dst} at {@code to}
     * (absolute: neither buffer's position moves), as {@code dst.put(to, src, from, length)} does;
     * the two regions must not overlap.
     */
    public static void copy(ByteBuffer src, int from, ByteBuffer dst, int to, int length) {
        if (length > SMALL || src.order() != dst.order()) {
            dst.put(to, src, from, length);
            return;
        }
        // Bounds checked once, as the bulk put would: nothing is written when they fail.
        java.util.Objects.checkFromIndexSize(from, length, src.limit());
        java.util.Objects.checkFromIndexSize(to, length, dst.limit());
        int i = 0;
        for (; i + 8 <= length; i += 8) {
            dst.putLong(to + i, src.getLong(from + i));
        }
        for (; i < length; i++) {
            dst.put(to + i, src.get(from + i));
        }
    }

    /** Sets {@code length} bytes of {@code dst} from {@code at} to zero. */
    public static void zero(ByteBuffer dst, int at, int length) {
        java.util.Objects.checkFromIndexSize(at, length, dst.limit());
        int i = 0;
        for (; i + 8 <= length; i += 8) {
            dst.putLong(at + i, 0L);
        }
        for (; i < length; i++) {
            dst.put(at + i, (byte) 0);
        }
    }
}
