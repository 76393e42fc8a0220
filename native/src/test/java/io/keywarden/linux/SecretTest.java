package io.keywarden.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Secrets off the heap: copies, partial reads, wiping, and slots of one chunk kept apart. */
class SecretTest {
    private static byte[] bytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] read(Secret s, long offset, int n) {
        ByteBuffer dst = ByteBuffer.allocateDirect(n + 8);
        int got = s.copyTo(offset, dst, 8, n);
        byte[] out = new byte[got];
        dst.get(8, out);
        return out;
    }

    @Test
    void aDuplicateHoldsTheSameBytesAndOutlivesItsOriginal() {
        for (int n : new int[] {0, 1, 51, 64, 65, 1000, 4096, 65536}) {
            byte[] b = bytes(n, n);
            Secret s = Secret.copyOf(b);
            Secret d = s.duplicate();
            s.close();
            assertArrayEquals(b, d.toByteArray(), n + " bytes");
            assertArrayEquals(b, read(d, 0, n), n + " bytes through copyTo");
            d.close();
        }
    }

    @Test
    void copyToReadsTheRangeAskedAndNothingPastTheEnd() {
        byte[] b = bytes(51, 7);
        try (Secret s = Secret.copyOf(b)) {
            assertArrayEquals(java.util.Arrays.copyOfRange(b, 10, 30), read(s, 10, 20));
            assertArrayEquals(java.util.Arrays.copyOfRange(b, 40, 51), read(s, 40, 100));
            assertEquals(0, read(s, 51, 10).length);
            assertEquals(0, read(s, 500, 10).length);
            assertArrayEquals(java.util.Arrays.copyOfRange(b, 0, 5), read(s, -3, 5));
        }
    }

    @Test
    void aWipedSecretCannotBeReadOrCopied() {
        Secret s = Secret.copyOf(bytes(51, 1));
        s.close();
        assertThrows(IllegalStateException.class, s::toByteArray);
        assertThrows(IllegalStateException.class, s::duplicate);
        assertThrows(IllegalStateException.class, () -> read(s, 0, 10));
    }

    @Test
    void slotsOfOneChunkNeverSeeEachOthersBytesAndAReusedSlotStartsWiped() {
        // Many 51-byte secrets share 64-byte slots of the same chunks: each keeps its own bytes
        // through duplicates and partial reads, and a slot freed and given again holds none of the old.
        List<Secret> live = new ArrayList<>();
        List<byte[]> want = new ArrayList<>();
        for (int i = 0; i < 3000; i++) {
            byte[] b = bytes(51, 1000 + i);
            live.add(Secret.copyOf(b));
            want.add(b);
        }
        for (int i = 0; i < live.size(); i += 2) {
            live.get(i).close();
        }
        for (int i = 1; i < live.size(); i += 2) {
            Secret d = live.get(i).duplicate();
            assertArrayEquals(want.get(i), d.toByteArray(), "secret " + i);
            live.get(i).close();
            live.set(i, d);
        }
        for (int i = 0; i < live.size(); i += 2) {
            // A short secret in a freed slot: the bytes past its length were wiped with the slot.
            Secret shorter = Secret.copyOf(new byte[] {1, 2, 3});
            assertArrayEquals(new byte[] {1, 2, 3}, shorter.toByteArray());
            byte[] tail = new byte[64 - 3];
            shorter.slot().buffer().get(3, tail);
            assertArrayEquals(new byte[64 - 3], tail, "a reused slot starts wiped");
            live.set(i, shorter);
        }
        for (int i = 1; i < live.size(); i += 2) {
            assertArrayEquals(want.get(i), read(live.get(i), 0, 51), "secret " + i);
        }
        live.forEach(Secret::close);
    }
}
