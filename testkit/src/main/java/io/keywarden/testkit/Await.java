package io.keywarden.testkit;

import java.time.Duration;
import java.util.function.Supplier;

/** Polls a condition every 200 ms until it holds or {@code max} has passed (then fails, saying why). */
public final class Await {
    /** A condition that may throw: a failed check counts as "not yet". */
    public interface Check {
        boolean holds() throws Exception;
    }

    private Await() {
    }

    public static void until(Duration max, Check check, Supplier<String> why) throws InterruptedException {
        long end = System.nanoTime() + max.toNanos();
        while (!holds(check)) {
            if (System.nanoTime() > end) {
                throw new AssertionError("not within " + max.toMillis() + " ms: " + why.get());
            }
            Thread.sleep(200);
        }
    }

    /**
     * Returns once at least {@code needed} is left before the next UTC boundary of {@code window}
     * (a guard's minute or hour), sleeping past the boundary first if not: a test that counts
     * within one budget window must not see the window reset half-way.
     */
    public static void clearOfWindowEdge(Duration window, Duration needed) throws InterruptedException {
        long w = window.toMillis();
        long left = w - System.currentTimeMillis() % w;
        if (left < needed.toMillis()) {
            Thread.sleep(left + 50);
        }
    }

    private static boolean holds(Check check) {
        try {
            return check.holds();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } catch (Exception e) {
            return false;
        }
    }
}
