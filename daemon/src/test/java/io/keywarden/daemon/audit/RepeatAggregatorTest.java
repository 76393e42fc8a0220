package io.keywarden.daemon.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.testkit.ManualClock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class RepeatAggregatorTest {
    private final ManualClock clock = new ManualClock(Instant.parse("2026-12-05T12:00:00Z"));
    private final RepeatAggregator<String> agg = new RepeatAggregator<>(clock, k -> "overflow");

    private Map<String, Long> drain() {
        Map<String, Long> out = new HashMap<>();
        agg.drain(out::put);
        return out;
    }

    @Test
    void theFirstOfAWindowIsRecordedAndItsRepeatsCountedUntilItCloses() {
        assertTrue(agg.first("a"));
        assertFalse(agg.first("a"));
        assertFalse(agg.first("a"));
        assertTrue(agg.first("b"), "each key its own window");
        assertEquals(Map.of(), drain(), "nothing closed yet");
        clock.advance(RepeatAggregator.WINDOW);
        assertFalse(agg.first("a"), "a window with repeats counts on until it is drained");
        assertTrue(agg.first("b"), "a window with none is over at its end: the next is a first");
        assertEquals(Map.of("a", 3L), drain());
        assertTrue(agg.first("a"), "drained: the next one opens a new window");
    }

    @Test
    void countsRacingDrainsLoseNothing() throws Exception {
        int threads = 4;
        AtomicLong events = new AtomicLong();
        AtomicLong firsts = new AtomicLong();
        AtomicLong drained = new AtomicLong();
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> counters = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            Thread th = new Thread(() -> {
                while (!stop.get()) {
                    events.incrementAndGet();
                    if (agg.first("k")) {
                        firsts.incrementAndGet();
                    }
                }
            });
            th.start();
            counters.add(th);
        }
        // Windows closed and drained while the counters run: until 200 drains found repeats to hand over.
        int handedOver = 0;
        long end = System.currentTimeMillis() + 30_000;
        while (handedOver < 200 && System.currentTimeMillis() < end) {
            clock.advance(Duration.ofSeconds(11));
            long[] n = {0};
            agg.drain((k, r) -> n[0] += r);
            drained.addAndGet(n[0]);
            if (n[0] > 0) {
                handedOver++;
            }
        }
        stop.set(true);
        for (Thread th : counters) {
            th.join();
        }
        clock.advance(Duration.ofSeconds(11));
        agg.drain((k, r) -> drained.addAndGet(r));
        assertTrue(handedOver >= 200, "drains raced the counters: " + handedOver);
        assertEquals(events.get(), firsts.get() + drained.get(),
                "every event is a first or a counted repeat: " + firsts + " firsts, " + drained + " repeats");
    }
}
