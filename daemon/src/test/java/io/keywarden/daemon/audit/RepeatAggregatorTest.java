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
import java.util.concurrent.CountDownLatch;
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
        int each = 50_000;
        AtomicLong firsts = new AtomicLong();
        AtomicLong drained = new AtomicLong();
        AtomicBoolean done = new AtomicBoolean();
        CountDownLatch start = new CountDownLatch(1);
        List<Thread> counters = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            Thread th = new Thread(() -> {
                try {
                    start.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int i = 0; i < each; i++) {
                    if (agg.first("k")) {
                        firsts.incrementAndGet();
                    }
                }
            });
            th.start();
            counters.add(th);
        }
        Thread drainer = new Thread(() -> {
            while (!done.get()) {
                clock.advance(Duration.ofSeconds(11));
                agg.drain((k, n) -> drained.addAndGet(n));
            }
        });
        drainer.start();
        start.countDown();
        for (Thread th : counters) {
            th.join();
        }
        done.set(true);
        drainer.join();
        clock.advance(Duration.ofSeconds(11));
        agg.drain((k, n) -> drained.addAndGet(n));
        assertEquals((long) threads * each, firsts.get() + drained.get(),
                "every event is a first or a counted repeat: " + firsts + " firsts, " + drained + " repeats");
        assertTrue(firsts.get() > 1, "windows closed while counting: " + firsts);
    }
}
