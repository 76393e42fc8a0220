package io.keywarden.daemon.guard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.policy.Guard;
import io.keywarden.policy.Selector;
import io.keywarden.policy.SpiffeId;
import io.keywarden.policy.Workload;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GuardEngineTest {
    /** 10:00:30 UTC on a fixed day. */
    private final Instant start = Instant.parse("2026-11-30T10:00:30Z");
    private Instant now = start;
    private final Clock clock = new Clock() {
        @Override
        public ZoneOffset getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    };
    private final List<String> events = new ArrayList<>();
    private final GuardListener listener = new GuardListener() {
        @Override
        public void breach(Workload w, BreachKind kind, String observed, String limit, String action, String sensor) {
            events.add("breach " + w.name() + " " + kind.label() + " " + observed + "/" + limit + " " + action + " " + sensor);
        }

        @Override
        public void revoke(Workload w, String reason) {
            events.add("revoke " + w.name());
        }

        @Override
        public void block(Workload w, String reason, Instant until) {
            events.add("block " + w.name() + " until " + until);
        }

        @Override
        public void usage(String workload, Instant minute, long in, long out, long requests, Map<String, Long> models) {
            events.add("usage " + workload + " " + minute + " " + in + "/" + out + " " + requests + " " + models);
        }
    };

    private static Workload workload(Guard g) {
        return new Workload("reviewer", SpiffeId.parse("spiffe://example.org/reviewer"),
                List.of(Selector.parse("unix:uid:1001")), List.of("openai"), io.keywarden.policy.Readers.ANY, Map.of(), g,
                null);
    }

    private static Guard guard(List<String> models, Guard.Budget b, Guard.Anomaly a, Guard.OnBreach on) {
        return new Guard(models, b, Optional.ofNullable(a), on);
    }

    @Test
    void aModelOutsideTheAllowlistIsRefusedAndRecordedOncePerMinute() {
        GuardEngine g = new GuardEngine(clock, listener);
        Workload w = workload(guard(List.of("gpt-4.1-mini"), Guard.Budget.NONE, null, Guard.OnBreach.BLOCK));
        assertEquals(Admission.ALLOWED, g.admit(w, "gpt-4.1-mini"));
        assertInstanceOf(Admission.ModelRefused.class, g.admit(w, "gpt-5"));
        assertInstanceOf(Admission.ModelRefused.class, g.admit(w, "gpt-5"));
        assertEquals(List.of("breach reviewer model gpt-5/gpt-4.1-mini refused gateway"), events,
                "a refusal is recorded once a minute and is not a budget breach: no block");
        now = now.plusSeconds(60);
        g.admit(w, "gpt-5");
        assertEquals(2, events.size());
    }

    @Test
    void requestsPerMinuteRefuseUntilTheNextMinuteAndFireOnce() {
        GuardEngine g = new GuardEngine(clock, listener);
        Workload w = workload(guard(List.of(), new Guard.Budget(OptionalLong.empty(), OptionalLong.empty(),
                OptionalLong.of(2)), null, Guard.OnBreach.ALERT));
        assertEquals(Admission.ALLOWED, g.admit(w, "m"));
        assertEquals(Admission.ALLOWED, g.admit(w, "m"));
        Admission third = g.admit(w, "m");
        Admission.OverBudget over = assertInstanceOf(Admission.OverBudget.class, third);
        assertEquals(BreachKind.REQUESTS_PER_MINUTE, over.kind());
        assertEquals(Duration.ofSeconds(30), over.retryAfter());
        g.admit(w, "m");
        assertEquals(List.of("breach reviewer requests_per_minute 3/2 alert gateway"), events);
        now = now.plusSeconds(30);
        assertEquals(Admission.ALLOWED, g.admit(w, "m"), "the next minute frees the budget");
    }

    @Test
    void anHourlyTokenBudgetBlocksUntilTheTopOfTheHour() {
        GuardEngine g = new GuardEngine(clock, listener);
        Workload w = workload(guard(List.of(), new Guard.Budget(OptionalLong.of(1000), OptionalLong.of(5000),
                OptionalLong.empty()), null, Guard.OnBreach.BLOCK));
        g.admit(w, "m");
        g.record(w, "m", 400, 500, 1, "gateway");
        assertTrue(events.isEmpty(), "900 of 1000 is not a breach");
        assertEquals(Admission.ALLOWED, g.admit(w, "m"));
        g.record(w, "m", 100, 200, 1, "gateway");
        assertEquals(List.of("breach reviewer tokens_per_hour 1200/1000 block gateway",
                "block reviewer until 2026-11-30T11:00:00Z"), events);
        Admission.OverBudget over = assertInstanceOf(Admission.OverBudget.class, g.admit(w, "m"));
        assertEquals(BreachKind.TOKENS_PER_HOUR, over.kind());
        assertEquals(Duration.ofMinutes(59).plusSeconds(30), over.retryAfter());
        g.record(w, "m", 10, 10, 1, "usage-api");
        assertEquals(2, events.size(), "once per window");
        now = Instant.parse("2026-11-30T11:00:00Z");
        assertEquals(Admission.ALLOWED, g.admit(w, "m"), "a new hour, a new budget");
        assertEquals(1220, g.snapshot("reviewer").tokensToday());
    }

    @Test
    void revokeOnBreachRevokesAndDoesNotBlock() {
        GuardEngine g = new GuardEngine(clock, listener);
        Workload w = workload(guard(List.of(), new Guard.Budget(OptionalLong.empty(), OptionalLong.of(100),
                OptionalLong.empty()), null, Guard.OnBreach.REVOKE));
        g.record(w, "m", 101, 0, 1, "usage-api");
        assertEquals(List.of("breach reviewer tokens_per_day 101/100 revoke usage-api", "revoke reviewer"), events);
    }

    @Test
    void anomalyComparesTheHourWithTheWorkloadsOwnBaseline() {
        GuardEngine g = new GuardEngine(clock, listener);
        Workload w = workload(guard(List.of(), Guard.Budget.NONE, new Guard.Anomaly(1.5, 3, 100), Guard.OnBreach.ALERT));
        g.record(w, "m", 1000, 0, 1, "gateway");
        assertTrue(events.isEmpty(), "no baseline yet: nothing to compare with");
        for (int h = 1; h <= 3; h++) {
            now = start.plus(Duration.ofHours(h));
            g.record(w, "m", 1000, 0, 1, "gateway");
        }
        assertTrue(events.isEmpty(), "steady use is not an anomaly: " + events);
        assertEquals(List.of(1000L, 1000L, 1000L), g.snapshot("reviewer").baselineHours());
        g.record(w, "m", 501, 0, 1, "gateway");
        assertEquals(List.of("breach reviewer anomaly 1501/1500 (1.50 x 1000 over 3 h) alert gateway"), events);
        now = start.plus(Duration.ofHours(6));
        g.record(w, "m", 50, 0, 1, "gateway");
        assertEquals(List.of(1501L, 0L, 0L), g.snapshot("reviewer").baselineHours(),
                "idle hours count as zero; at most baselineHours are kept");
        assertEquals(1, events.size(), "under the floor (100) nothing fires even above the baseline");
    }

    @Test
    void usageIsWrittenPerWorkloadPerFinishedMinute() {
        GuardEngine g = new GuardEngine(clock, listener);
        Workload w = workload(Guard.NONE);
        g.record(w, "gpt-4.1-mini", 10, 20, 1, "gateway");
        g.record(w, "gpt-4.1-mini", 1, 2, 1, "gateway");
        g.flushUsage();
        assertTrue(events.isEmpty(), "the minute is not over");
        now = now.plusSeconds(60);
        g.flushUsage();
        assertEquals(List.of("usage reviewer 2026-11-30T10:00:00Z 11/22 2 {gpt-4.1-mini=2}"), events);
        g.flushUsage();
        assertEquals(1, events.size());
    }

    @Test
    void countersSurviveARestartThroughTheStateFile(@TempDir Path dir) throws Exception {
        GuardEngine g = new GuardEngine(clock, listener);
        Workload w = workload(guard(List.of(), new Guard.Budget(OptionalLong.of(1000), OptionalLong.empty(),
                OptionalLong.empty()), null, Guard.OnBreach.BLOCK));
        g.record(w, "m", 1200, 0, 1, "gateway");
        Path file = dir.resolve("guard-state.json");
        GuardState.save(file, g.export());
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        GuardEngine again = new GuardEngine(clock, listener);
        again.restore(GuardState.load(file));
        assertInstanceOf(Admission.OverBudget.class, again.admit(w, "m"), "the budget is still used up after a restart");
        again.record(w, "m", 1, 0, 1, "gateway");
        assertEquals(2, events.size(), "and the breach does not fire twice in one window: " + events);
        Files.writeString(file, "{\"reviewer\": {\"tokensHour\": -1}}");
        java.io.IOException e = org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                () -> GuardState.load(file));
        assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("fix or remove it"), e.getMessage());
    }

    @Test
    void reservationsHoldUnderConcurrencyAndSettleToWhatWasUsed() throws Exception {
        GuardEngine g = new GuardEngine(clock, listener);
        Workload w = workload(guard(List.of(), new Guard.Budget(OptionalLong.of(1000), OptionalLong.empty(),
                OptionalLong.empty()), null, Guard.OnBreach.ALERT));
        // 64 threads reserve a worst case of 120 at once: no more than 1000 / 120 = 8 are admitted.
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(16);
        java.util.concurrent.CountDownLatch go = new java.util.concurrent.CountDownLatch(1);
        List<java.util.concurrent.Future<Admission>> all = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            all.add(pool.submit(() -> {
                go.await();
                return g.reserveNow(w, "m", 120);
            }));
        }
        go.countDown();
        List<Reservation> held = new ArrayList<>();
        for (var f : all) {
            if (f.get() instanceof Admission.Allowed a) {
                held.add(a.reservation());
            }
        }
        pool.shutdown();
        assertEquals(8, held.size(), "1000 tokens hold 8 worst cases of 120");
        assertEquals(960, g.snapshot("reviewer").reserved());
        for (Reservation r : held) {
            g.settle(w, r, "m", 30, 20, "gateway");
            g.settle(w, r, "m", 30, 20, "gateway");
        }
        assertEquals(0, g.snapshot("reviewer").reserved(), "each settled once");
        assertEquals(400, g.snapshot("reviewer").tokensThisHour(), "settled to what was used, counted once each");
        assertInstanceOf(Admission.Allowed.class, g.reserveNow(w, "m", 600), "400 used + 600 fits 1000");
        Admission.OverBudget over = assertInstanceOf(Admission.OverBudget.class, g.reserveNow(w, "m", 1));
        assertEquals(1001, over.observed(), "used + reserved + this one");
        assertTrue(events.isEmpty(), "refused only because of what is in flight: no breach yet " + events);
        g.settle(w, null, "m", 0, 0, "gateway");
        Admission.OverBudget breach = assertInstanceOf(Admission.OverBudget.class, g.reserveNow(w, "m", 700));
        assertTrue(events.stream().anyMatch(e -> e.startsWith("breach reviewer tokens_per_hour")), "400 used + 700 can"
                + " never fit: a breach " + events + " " + breach);
    }
}
