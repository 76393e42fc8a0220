package io.keywarden.daemon.ops;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.ToDoubleFunction;

/**
 * The metrics of PRODUCT.md, in Prometheus text. Label values are names, never secrets. Every
 * meter has HELP text; the counters an alert watches exist at zero from the start (per key, see
 * {@link #registerKey}), so {@code increase(...[5m]) > 0} sees the first error.
 */
public final class Metrics implements io.keywarden.issuer.IssuerMetrics, AuditMetrics, GatewayMetrics, FleetMetrics {
    /** Issuer latency buckets: a handful that tell a healthy issuer from a struggling one. */
    private static final Duration[] BUCKETS = {Duration.ofMillis(10), Duration.ofMillis(50), Duration.ofMillis(100),
        Duration.ofMillis(250), Duration.ofMillis(500), Duration.ofSeconds(1), Duration.ofMillis(2500),
        Duration.ofSeconds(5), Duration.ofSeconds(10)};

    private final PrometheusMeterRegistry prometheus = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    /**
     * Every meter is registered here: Prometheus's own registry when nothing is exported (a count
     * per open then goes straight to its meter), else a composite that /metrics (Prometheus) and the
     * exports (StatsD, OTLP) join, whose meters pass each count on to every member's.
     */
    private final io.micrometer.core.instrument.MeterRegistry registry;
    private final java.util.List<io.micrometer.core.instrument.MeterRegistry> exports =
            new java.util.concurrent.CopyOnWriteArrayList<>();
    private final Map<String, Boolean> gauges = new ConcurrentHashMap<>();
    /** The issuer instance of each key (the {@code issuer} label of issuance and refresh counters). */
    private final Map<String, String> issuerOfKey = new ConcurrentHashMap<>();

    /**
     * A meter's name and label values. Meters counted per request or per refresh are looked up here
     * instead of built and registered each time: Micrometer's builder sorts the tags and (for a
     * timer with buckets) converts them through streams at every call, 4% of a refresh's CPU by
     * {@code perf} (ScaleBench). No meter is ever removed from the registry, so an entry never goes stale.
     */
    private record MeterKey(String name, String a, String b, String c, String d) {
        @Override
        public boolean equals(Object o) {
            // Written out: a record's own equals and hashCode go through method handles, which the
            // daemon's C1-only JIT does not inline (3% of the gateway's event loop by perf, as map keys).
            return o instanceof MeterKey k && name.equals(k.name) && java.util.Objects.equals(a, k.a)
                    && java.util.Objects.equals(b, k.b) && java.util.Objects.equals(c, k.c)
                    && java.util.Objects.equals(d, k.d);
        }

        @Override
        public int hashCode() {
            int h = name.hashCode();
            h = 31 * h + (a == null ? 0 : a.hashCode());
            h = 31 * h + (b == null ? 0 : b.hashCode());
            h = 31 * h + (c == null ? 0 : c.hashCode());
            return 31 * h + (d == null ? 0 : d.hashCode());
        }
    }

    private final Map<MeterKey, Counter> counters = new ConcurrentHashMap<>();
    private final Map<MeterKey, Timer> timers = new ConcurrentHashMap<>();

    /**
     * The counter named {@code k}, made from {@code describe} and registered on first use. The
     * descriptions are lambdas that capture nothing (one object each, made once): a capturing one
     * is an object per call, through a method handle for the daemon's C1 compiler (by perf, a sixth
     * of a cached open's record of its grant).
     */
    private Counter counter(MeterKey k, java.util.function.Function<MeterKey, Counter.Builder> describe) {
        Counter c = counters.get(k);
        return c != null ? c : counters.computeIfAbsent(k, kk -> describe.apply(kk).register(registry));
    }

    private Timer timer(MeterKey k, java.util.function.Function<MeterKey, Timer.Builder> describe) {
        Timer t = timers.get(k);
        return t != null ? t : timers.computeIfAbsent(k, kk -> describe.apply(kk).register(registry));
    }

    public Metrics() {
        this(java.util.List.of());
    }

    /** With {@code exports} (StatsD, OTLP) receiving every meter besides /metrics; closed by {@link #closeExports}. */
    public Metrics(java.util.List<io.micrometer.core.instrument.MeterRegistry> exports) {
        if (exports.isEmpty()) {
            registry = prometheus;
        } else {
            var composite = new io.micrometer.core.instrument.composite.CompositeMeterRegistry();
            composite.add(prometheus);
            for (var e : exports) {
                this.exports.add(e);
                composite.add(e);
            }
            registry = composite;
        }
        ledgerErrors();
        // The JVM's and the process's own meters (jvm_*, process_*): memory, GC, threads, CPU, open files.
        for (io.micrometer.core.instrument.binder.MeterBinder b : new io.micrometer.core.instrument.binder.MeterBinder[] {
            new io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics(),
            new io.micrometer.core.instrument.binder.jvm.JvmGcMetrics(),
            new io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics(),
            new io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics(),
            new io.micrometer.core.instrument.binder.system.ProcessorMetrics(),
            new io.micrometer.core.instrument.binder.system.FileDescriptorMetrics(),
            new io.micrometer.core.instrument.binder.system.UptimeMetrics()}) {
            b.bindTo(registry);
        }
        Gauge.builder("process.resident.memory", Metrics::residentBytes).baseUnit("bytes")
                .description("Resident set size of the daemon (VmRSS)").register(registry);
    }

    /** {@code keywarden_build_info{version,commit} 1}: which build each node runs. */
    public void buildInfo(String version, String commit) {
        Gauge.builder("keywarden.build.info", () -> 1).description("The build this daemon runs (always 1)")
                .tag("version", version).tag("commit", commit).register(registry);
    }

    /** {@code keywarden_ready}: 1 while /readyz answers 200, 0 otherwise. */
    public void readiness(java.util.function.BooleanSupplier ready) {
        Gauge.builder("keywarden.ready", () -> ready.getAsBoolean() ? 1 : 0)
                .description("1 while the daemon is ready (/readyz 200), 0 otherwise").register(registry);
    }

    private static double residentBytes() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024.0;
                }
            }
        } catch (java.io.IOException | NumberFormatException e) {
            // unknown below
        }
        return Double.NaN;
    }

    private Counter issuedCounter(String key, String outcome) {
        return counter(new MeterKey("keywarden.keys.issued", issuerOfKey.getOrDefault(key, ""), key, outcome, null),
                k -> Counter.builder(k.name()).description("Keys issued for a first use, by issuer and outcome")
                        .tag("issuer", k.a()).tag("key", k.b()).tag("outcome", k.c()));
    }

    private Counter refreshCounter(String key, String outcome) {
        return counter(new MeterKey("keywarden.key.refreshes", issuerOfKey.getOrDefault(key, ""), key, outcome, null),
                k -> Counter.builder(k.name()).description("Key refreshes before expiry, by issuer and outcome")
                        .tag("issuer", k.a()).tag("key", k.b()).tag("outcome", k.c()));
    }

    private Counter accessCounter(String workload, String key, String decision) {
        return counter(new MeterKey("keywarden.access", workload, key, decision, null),
                k -> Counter.builder(k.name()).description("Opens of a key's files, by workload (\"\" for a caller"
                                + " that is none) and decision")
                        .tag("workload", k.a()).tag("key", k.b()).tag("decision", k.c()));
    }

    /**
     * Registers a key's counters at zero (at start and when a reloaded policy adds the key), under
     * the issuer instance that serves it.
     */
    public void registerKey(String key, String issuer) {
        issuerOfKey.put(key, issuer);
        for (String o : new String[] {"ok", "error"}) {
            issuedCounter(key, o);
            refreshCounter(key, o);
        }
        accessCounter("", key, "granted");
        accessCounter("", key, "denied");
        revokeFailures(key);
    }

    @Override
    public void issued(String key, AuditMetrics.Outcome outcome) {
        issuedCounter(key, outcome.label()).increment();
    }

    @Override
    public void refreshed(String key, AuditMetrics.Outcome outcome) {
        refreshCounter(key, outcome.label()).increment();
    }

    @Override
    public void revoked(String key, String reason) {
        counter(new MeterKey("keywarden.keys.revoked", key, reason, null, null),
                k -> Counter.builder(k.name()).description("Leases revoked at the issuer, by reason")
                        .tag("key", k.a()).tag("reason", k.b())).increment();
    }

    @Override
    public void revokeFailed(String key) {
        revokeFailures(key).increment();
    }

    private Counter revokeFailures(String key) {
        return counter(new MeterKey("keywarden.keys.revoke.failures", key, null, null, null),
                k -> Counter.builder(k.name()).description("Revokes the issuer did not take, by key")
                        .tag("key", k.a()));
    }

    @Override
    public void access(String workload, String key, Access decision) {
        accessCounter(workload == null ? "" : workload, key, decision.label()).increment();
    }

    @Override
    public void issuerRequest(String issuer, Op op, Duration took) {
        timer(new MeterKey("keywarden.issuer.request", issuer, op.label(), null, null),
                k -> Timer.builder(k.name()).description("Issuer requests (issue, revoke), by issuer and operation")
                        .tag("issuer", k.a()).tag("op", k.b()).serviceLevelObjectives(BUCKETS))
                .record(took);
    }

    /** How many leases could not be revoked and may still work at the provider ({@code status --unrevoked}). */
    public <T> void unrevokedGauge(T source, ToDoubleFunction<T> count) {
        Gauge.builder("keywarden.keys.unrevoked", source, count)
                .description("Leases the issuer did not revoke whose key may still work at the provider").register(registry);
    }

    /** Registers, once per key, gauges computed from {@code source} at scrape time. */
    public <T> void leaseGauges(String key, T source, ToDoubleFunction<T> active, ToDoubleFunction<T> minRemaining) {
        if (gauges.putIfAbsent(key, true) == null) {
            Gauge.builder("keywarden.active.leases", source, active).description("Live leases of a key on this node")
                    .tag("key", key).register(registry);
            Gauge.builder("keywarden.lease.seconds.remaining.min", source, minRemaining)
                    .description("Seconds until the soonest-expiring lease of a key ends").tag("key", key).register(registry);
        }
    }

    /** {@code keywarden_workload_leases{workload,key}}: whether the workload holds a live lease of the key here (0/1). */
    public <T> void workloadLeaseGauge(String workload, String key, T source, ToDoubleFunction<T> active) {
        if (gauges.putIfAbsent(workload + "\u0000" + key, true) == null) {
            Gauge.builder("keywarden.workload.leases", source, active)
                    .description("Live leases a workload holds of a key on this node").tag("workload", workload)
                    .tag("key", key).register(registry);
        }
    }

    private Counter ledgerErrors() {
        return Counter.builder("keywarden.ledger.errors").description("Audit records that could not be written")
                .register(registry);
    }

    /** Distinct model labels per workload before further ones are counted as "other" (bounded cardinality). */
    static final int MAX_MODELS_PER_WORKLOAD = 32;
    private final Map<String, java.util.Set<String>> modelsSeen = new ConcurrentHashMap<>();

    @Override
    public void tokens(String workload, String key, String model, long in, long out) {
        String m = modelLabel(workload, model);
        tokenCounter(workload, key, m, "in").increment(in);
        tokenCounter(workload, key, m, "out").increment(out);
    }

    private String modelLabel(String workload, String model) {
        if (model == null || model.isEmpty()) {
            return "unknown";
        }
        java.util.Set<String> seen = modelsSeen.computeIfAbsent(workload, w -> ConcurrentHashMap.newKeySet());
        if (seen.contains(model)) {
            return model;
        }
        synchronized (seen) {
            if (seen.size() < MAX_MODELS_PER_WORKLOAD) {
                seen.add(model);
                return model;
            }
        }
        return "other";
    }

    private Counter tokenCounter(String workload, String key, String model, String direction) {
        return counter(new MeterKey("keywarden.tokens", workload, key, model, direction),
                k -> Counter.builder(k.name()).description("LLM tokens used, by workload, key, model and direction")
                        .tag("workload", k.a()).tag("key", k.b()).tag("model", k.c()).tag("direction", k.d())
                        );
    }

    @Override
    public void gatewayRequest(String workload, String key, GatewayMetrics.Outcome outcome) {
        counter(new MeterKey("keywarden.gateway.requests", workload, key, outcome.label(), null),
                k -> Counter.builder(k.name()).description("Gateway requests, by workload, key and outcome")
                        .tag("workload", k.a()).tag("key", k.b()).tag("outcome", k.c())).increment();
    }

    /** A guard breach (model refusals included), by workload and kind. */
    public void breach(String workload, String kind) {
        breaches(workload, kind).increment();
    }

    private Counter breaches(String workload, String kind) {
        return counter(new MeterKey("keywarden.guard.breaches", workload, kind, null, null),
                k -> Counter.builder(k.name()).description("Guard breaches, by workload and kind")
                        .tag("workload", k.a()).tag("kind", k.b()));
    }

    /** {@code keywarden_fleet_up}: 1 while the last operation on the fleet's Redis succeeded. */
    public void fleetUp(java.util.function.BooleanSupplier up, boolean local) {
        Gauge.builder("keywarden.fleet.up", up, u -> u.getAsBoolean() ? 1 : 0)
                .description("1 while the fleet's Redis answers, 0 when this node decides alone (or refuses)")
                .strongReference(true)
                .register(registry);
        Gauge.builder("keywarden.fleet.deciding.alone", up, u -> local && !u.getAsBoolean() ? 1 : 0)
                .description("1 while Redis does not answer and this node enforces budgets on its own counts"
                        + " (fleet.onUnavailable: local)")
                .strongReference(true)
                .register(registry);
        for (Reservation outcome : Reservation.values()) {
            reservations(outcome);
        }
    }

    @Override
    public void fleetReservation(Reservation outcome, Duration took) {
        reservations(outcome).increment();
        timer(new MeterKey("keywarden.fleet.op", "reserve", null, null, null),
                k -> Timer.builder(k.name()).description("Operations on the fleet's Redis a request waited for")
                        .tag("op", k.a())).record(took);
    }

    private Counter reservations(Reservation outcome) {
        return counter(new MeterKey("keywarden.fleet.reservations", outcome.label(), null, null, null),
                k -> Counter.builder(k.name()).description("Fleet budget reservations, by outcome")
                        .tag("outcome", k.a()));
    }

    /** Breach counters at zero for a guarded workload, so an alert sees the first breach. */
    public void registerGuard(String workload) {
        for (String kind : new String[] {"model", "tokens_per_hour", "tokens_per_day", "requests_per_minute", "anomaly"}) {
            breaches(workload, kind);
        }
    }

    /** Publishes a last time and stops the exports. */
    public void closeExports() {
        for (var e : exports) {
            ((io.micrometer.core.instrument.composite.CompositeMeterRegistry) registry).remove(e);
            e.close();
        }
        exports.clear();
    }

    @Override
    public void ledgerError() {
        ledgerErrors().increment();
    }

    public String scrape() {
        return prometheus.scrape();
    }
}
