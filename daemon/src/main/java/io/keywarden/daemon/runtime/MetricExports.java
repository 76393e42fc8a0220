package io.keywarden.daemon.runtime;

import io.keywarden.daemon.ops.MetricsExport;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The meter registries the config's {@code metrics:} asks for: StatsD (DogStatsD by default) and OTLP. */
final class MetricExports {
    private static final Logger LOG = LoggerFactory.getLogger(MetricExports.class);

    private MetricExports() {
    }

    /** The exports of {@code m} for node {@code node} (its OTLP {@code host.name}); empty when it asks for none. */
    static List<MeterRegistry> of(MetricsExport m, String node) throws java.io.IOException {
        List<MeterRegistry> exports = new java.util.ArrayList<>();
        if (m.statsd().isPresent()) {
            MetricsExport.StatsD sd = m.statsd().get();
            exports.add(new io.keywarden.daemon.ops.StatsdRegistry(sd.host(), sd.port(),
                    io.keywarden.daemon.ops.StatsdRegistry.Flavor.valueOf(sd.flavor().toUpperCase(java.util.Locale.ROOT)),
                    m.step(), io.micrometer.core.instrument.Clock.SYSTEM));
            LOG.info("metrics: StatsD ({}) to {}:{} every {} s", sd.flavor(), sd.host(), sd.port(), m.step().toSeconds());
        }
        if (m.otlp().isPresent()) {
            String url = m.otlp().get().toString();
            java.time.Duration step = m.step();
            exports.add(new io.micrometer.registry.otlp.OtlpMeterRegistry(new io.micrometer.registry.otlp.OtlpConfig() {
                @Override
                public String get(String key) {
                    return null;
                }

                @Override
                public String url() {
                    return url;
                }

                @Override
                public java.time.Duration step() {
                    return step;
                }

                @Override
                public Map<String, String> resourceAttributes() {
                    return Map.of("service.name", "keywarden", "host.name", node);
                }
            }, io.micrometer.core.instrument.Clock.SYSTEM));
            LOG.info("metrics: OTLP to {} every {} s", url, step.toSeconds());
        }
        return exports;
    }

    /**
     * The daemon's meters, with StatsD and OTLP exports when the config asks (before anything
     * registers a meter), its build info and readiness gauges.
     */
    static io.keywarden.daemon.ops.Metrics start(Spec s, io.keywarden.daemon.ops.Readiness readiness, Components components)
            throws java.io.IOException {
        List<MeterRegistry> exports = of(s.extensions().metrics(), s.node());
        io.keywarden.daemon.ops.Metrics metrics = new io.keywarden.daemon.ops.Metrics();
        if (!exports.isEmpty()) {
            io.keywarden.daemon.ops.Metrics withExports = new io.keywarden.daemon.ops.Metrics(exports);
            metrics = withExports;
            components.add("metric exports", withExports::closeExports);
        }
        io.keywarden.daemon.BuildInfo b = io.keywarden.daemon.BuildInfo.load();
        metrics.buildInfo(b.version(), b.commit());
        metrics.readiness(readiness::isReady);
        return metrics;
    }
}
