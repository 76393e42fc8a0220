package io.keywarden.daemon.ops;

import java.net.URI;
import java.time.Duration;
import java.util.Optional;

/** Optional exports besides /metrics: DogStatsD (or plain StatsD) and OTLP over HTTP, every {@code step}. */
public record MetricsExport(Optional<StatsD> statsd, Optional<URI> otlp, Duration step) {
    public static final MetricsExport NONE = new MetricsExport(Optional.empty(), Optional.empty(), Duration.ofSeconds(10));

    /** {@code flavor}: datadog, etsy or telegraf (Micrometer's StatsD flavours). */
    public record StatsD(String host, int port, String flavor) {
    }
}
