package io.keywarden.daemon.audit;

import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BiConsumer;

/**
 * Counts repeated access events so that a flood cannot grow the ledger without bound. Per key,
 * the first event of a window is "first" (record it); later ones in the window are counted;
 * {@link #drain} hands over the counts of windows that have closed. The table is bounded: past
 * {@link #MAX_KEYS} distinct keys, new ones are folded into one overflow key ({@code overflow}),
 * so even a flood of distinct names stays small.
 */
final class RepeatAggregator<K> {
    static final Duration WINDOW = Duration.ofSeconds(10);
    static final int MAX_KEYS = 4096;

    private static final long WINDOW_MILLIS = WINDOW.toMillis();

    /** Its counts change under its own lock; a window drained is closed and counts nothing more. */
    private static final class Window {
        final long startMillis;
        long repeats;
        boolean closed;

        Window(long startMillis) {
            this.startMillis = startMillis;
        }

        /** Counts a repeat unless this window is over (closed, or past its time with none counted). */
        synchronized boolean countRepeat(long nowMillis) {
            if (closed || (repeats == 0 && nowMillis - startMillis >= WINDOW_MILLIS)) {
                return false;
            }
            repeats++;
            return true;
        }

        /** Closes it; the repeats it counted. */
        synchronized long close() {
            closed = true;
            return repeats;
        }
    }

    private final Clock clock;
    private final Map<K, Window> windows = new ConcurrentHashMap<>();

    private final java.util.function.UnaryOperator<K> overflow;

    RepeatAggregator(Clock clock, java.util.function.UnaryOperator<K> overflow) {
        this.clock = clock;
        this.overflow = overflow;
    }

    /** True when this denial opens a window (record it); false when it is a counted repeat. */
    boolean first(K k) {
        long now = clock.millis();
        // A repeat in an open window (nearly every event of a busy key) counts there, without the
        // table's lock or a callback object.
        Window open = windows.get(k);
        if (open != null && open.countRepeat(now)) {
            return false;
        }
        K key = windows.size() >= MAX_KEYS && !windows.containsKey(k) ? overflow.apply(k) : k;
        boolean[] opened = {false};
        windows.compute(key, (kk, w) -> {
            if (w == null || !w.countRepeat(now)) {
                opened[0] = true;
                return new Window(now);
            }
            return w;
        });
        return opened[0];
    }

    /** Forgets {@code k}'s window (its first event could not be recorded: the next one is first again). */
    void forget(K k) {
        windows.remove(k);
    }

    /** Hands over (key, repeats) for every closed window with repeats, and forgets closed windows. */
    void drain(BiConsumer<K, Long> sink) {
        long now = clock.millis();
        List<Map.Entry<K, Long>> out = new ArrayList<>();
        windows.forEach((k, w) -> {
            if (now - w.startMillis >= WINDOW_MILLIS) {
                windows.computeIfPresent(k, (kk, ww) -> {
                    if (ww != w) {
                        return ww;
                    }
                    long repeats = ww.close();
                    if (repeats > 0) {
                        out.add(Map.entry(k, repeats));
                    }
                    return null;
                });
            }
        });
        out.forEach(e -> sink.accept(e.getKey(), e.getValue()));
    }
}
