package io.keywarden.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.sun.jna.Memory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The ring's mechanics on the real kernel: capacity, a poll that completes when its eventfd is written. */
class IoUringTest {
    static IoUring ringOrSkip(int entries) {
        try {
            return IoUring.create(entries);
        } catch (NativeException e) {
            assumeTrue(false, "io_uring is not allowed here: " + e.getMessage());
            return null;
        }
    }

    @Test
    void aPollCompletesWhenItsEventfdIsWrittenAndTheRingKnowsItsCapacity() throws Exception {
        int efd = LibC.eventfd(0, LibC.EFD_CLOEXEC | LibC.EFD_NONBLOCK);
        assertTrue(efd >= 0);
        try (IoUring ring = ringOrSkip(4)) {
            List<long[]> seen = new ArrayList<>();
            int at = ring.next();
            assertTrue(at >= 0);
            java.nio.ByteBuffer sqe = ring.sqes();
            sqe.put(at, (byte) IoUring.OP_POLL_ADD);
            sqe.putInt(at + 4, efd);
            sqe.putInt(at + 28, IoUring.POLLIN);
            sqe.putLong(at + 32, 42);
            ring.submit(false);
            assertEquals(0, ring.reap((u, r) -> seen.add(new long[] {u, r})), "nothing to say before the write");
            Memory one = new Memory(8);
            one.setLong(0, 1);
            assertEquals(8, LibC.write(efd, one, 8));
            ring.submit(true);
            assertEquals(1, ring.reap((u, r) -> seen.add(new long[] {u, r})));
            assertEquals(42, seen.get(0)[0], "its user_data");
            assertTrue((seen.get(0)[1] & IoUring.POLLIN) != 0, "readable: " + seen.get(0)[1]);
            // Four entries (the kernel may round up): they fill, then next() says so instead of overwriting.
            int free = 0;
            while (ring.next() >= 0) {
                free++;
            }
            assertTrue(free >= 4 && free <= 8, free + " free entries");
            assertEquals(-1, ring.next());
        } finally {
            LibC.close(efd);
        }
    }
}
