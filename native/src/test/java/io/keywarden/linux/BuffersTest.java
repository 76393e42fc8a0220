package io.keywarden.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BuffersTest {
    private static byte[] bytes(ByteBuffer b) {
        byte[] a = new byte[b.capacity()];
        b.get(0, a);
        return a;
    }

    private static ByteBuffer random(int size, ByteOrder order, long seed) {
        byte[] a = new byte[size];
        new Random(seed).nextBytes(a);
        return ByteBuffer.allocateDirect(size).order(order).put(0, a);
    }

    /** Every length and offset around the word size, small and bulk, copies what the bulk put copies. */
    @Test
    void copiesAsTheBulkPutDoes() {
        for (ByteOrder srcOrder : new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN}) {
            for (ByteOrder dstOrder : new ByteOrder[] {ByteOrder.LITTLE_ENDIAN, ByteOrder.BIG_ENDIAN}) {
                for (int length : new int[] {0, 1, 7, 8, 9, 15, 16, 17, 40, 255, 256, 257, 600}) {
                    for (int from : new int[] {0, 1, 3, 8}) {
                        for (int to : new int[] {0, 5, 16}) {
                            ByteBuffer src = random(1024, srcOrder, length * 31L + from);
                            ByteBuffer mine = random(1024, dstOrder, 7);
                            ByteBuffer theirs = random(1024, dstOrder, 7);
                            Buffers.copy(src, from, mine, to, length);
                            theirs.put(to, src, from, length);
                            assertArrayEquals(bytes(theirs), bytes(mine),
                                    "length " + length + " from " + from + " to " + to + " " + srcOrder + "→" + dstOrder);
                        }
                    }
                }
            }
        }
    }

    @Test
    void zeroesOnlyItsRange() {
        for (int length : new int[] {0, 1, 8, 13, 128}) {
            ByteBuffer b = random(256, ByteOrder.nativeOrder(), length);
            byte[] expected = bytes(b);
            java.util.Arrays.fill(expected, 3, 3 + length, (byte) 0);
            Buffers.zero(b, 3, length);
            assertArrayEquals(expected, bytes(b), "length " + length);
        }
    }

    /** Out of bounds fails before anything is written, as the bulk put does. */
    @Test
    void outOfBoundsWritesNothing() {
        ByteBuffer src = random(64, ByteOrder.LITTLE_ENDIAN, 1);
        ByteBuffer dst = random(64, ByteOrder.LITTLE_ENDIAN, 2);
        byte[] before = bytes(dst);
        assertThrows(IndexOutOfBoundsException.class, () -> Buffers.copy(src, 40, dst, 0, 32));
        assertThrows(IndexOutOfBoundsException.class, () -> Buffers.copy(src, 0, dst, 40, 32));
        assertThrows(IndexOutOfBoundsException.class, () -> Buffers.copy(src, -1, dst, 0, 8));
        assertThrows(IndexOutOfBoundsException.class, () -> Buffers.zero(dst, 60, 8));
        assertArrayEquals(before, bytes(dst));
    }
}
