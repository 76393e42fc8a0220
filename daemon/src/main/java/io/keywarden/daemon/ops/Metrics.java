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

/** The metrics of PRODUCT.md, in Prometheus text. Label values are names, never secrets. */
public final class Metrics {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Map<String, Boolean> gauges = new ConcurrentHashMap<>();

    public void issued(String key, String outcome) {
        Counter.builder("keywarden.keys.issued").tag("key", key).tag("outcome", outcome).register(registry).increment();
    }

    public void refreshed(String key, String outcome) {
        Counter.builder("keywarden.key.refreshes").tag("key", key).tag("outcome", outcome).register(registry).increment();
    }

    public void revoked(String key, String reason) {
        Counter.builder("keywarden.keys.revoked").tag("key", key).tag("reason", reason).register(registry).increment();
    }

    public void access(String key, String decision) {
        Counter.builder("keywarden.access").tag("key", key).tag("decision", decision).register(registry).increment();
    }

    public void issuerRequest(String issuer, String op, Duration took) {
        Timer.builder("keywarden.issuer.request").tag("issuer", issuer).tag("op", op).publishPercentileHistogram()
                .register(registry).record(took);
    }

    /** Registers, once per key, gauges computed from {@code source} at scrape time. */
    public <T> void leaseGauges(String key, T source, ToDoubleFunction<T> active, ToDoubleFunction<T> minRemaining) {
        if (gauges.putIfAbsent(key, true) == null) {
            Gauge.builder("keywarden.active.leases", source, active).tag("key", key).register(registry);
            Gauge.builder("keywarden.lease.seconds.remaining.min", source, minRemaining).tag("key", key).register(registry);
        }
    }

    public void ledgerError() {
        Counter.builder("keywarden.ledger.errors").register(registry).increment();
    }

    public String scrape() {
        return registry.scrape();
    }
}
