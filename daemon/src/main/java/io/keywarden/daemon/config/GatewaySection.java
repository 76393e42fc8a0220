package io.keywarden.daemon.config;

import io.keywarden.daemon.net.HostPort;
import io.keywarden.daemon.gateway.GatewaySettings;
import io.keywarden.policy.Durations;
import io.keywarden.policy.Names;
import io.keywarden.policy.yaml.YamlScalar;
import io.keywarden.policy.yaml.MappingReader;
import io.keywarden.policy.yaml.YamlNode;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** The config's {@code gateway:} section: listeners, upstreams per key, limits; read with the loader's problems and helpers. */
final class GatewaySection extends ConfigSection {
    GatewaySection(ConfigLoader loader) {
        super(loader);
    }

    /** {@code gateway:} listeners, upstreams per key, a CA for upstream TLS, limits. */
    GatewaySettings read(YamlNode n) {
        return loader.section(n, "gateway", r -> {
            Optional<HostPort> listen = r.optionalParsed("listen", HostPort::parse);
            listen.filter(hp -> !ConfigLoader.isLoopback(hp.host())).ifPresent(hp -> loader.problems.add(r.map(), "gateway.listen " + hp
                    + " is not a loopback address: the caller is found from the local TCP peer; remote callers need mTLS"));
            Optional<Path> socket = loader.absolute(r, "gateway.socket", "socket");
            Optional<GatewaySettings.Mtls> mtls = r.optional("mtls").map(m -> loader.section(m, "gateway.mtls", mr -> {
                Optional<HostPort> at = mr.required("listen").flatMap(ln -> mr.string(ln, "gateway.mtls.listen")
                        .flatMap(t -> mr.parsed(ln.location(), "gateway.mtls.listen", t, HostPort::parse)));
                Optional<Path> api = mr.required("workloadApi").flatMap(an -> mr.string(an, "gateway.mtls.workloadApi")
                        .flatMap(t -> mr.parsed(an.location(), "gateway.mtls.workloadApi", t, ConfigLoader::unixAddress)));
                return at.isPresent() && api.isPresent() ? new GatewaySettings.Mtls(at.get(), api.get()) : null;
            }));
            if (listen.isEmpty() && socket.isEmpty() && mtls.isEmpty()) {
                loader.problems.add(r.map(), "gateway: set listen (loopback HOST:PORT), socket (a Unix socket path), mtls, or"
                        + " several");
            }
            Map<String, GatewaySettings.Upstream> upstreams = new LinkedHashMap<>();
            r.optional("upstreams").ifPresent(u -> MappingReader.of(u, "gateway.upstreams", loader.problems).ifPresent(ur -> {
                for (var e : ur.map().entries()) {
                    ur.optional(e.key());
                    String where = "gateway.upstreams." + e.key();
                    if (!Names.isValid(e.key())) {
                        loader.problems.add(e.keyLocation(), where + ": not a key name");
                        continue;
                    }
                    GatewaySettings.Upstream up = e.value() instanceof YamlScalar
                            ? ur.string(e.value(), where).flatMap(t -> ur.parsed(e.value().location(), where, t,
                                    ConfigLoader::httpUri)).map(uri -> new GatewaySettings.Upstream(uri, GatewaySettings.UpstreamAuth.BEARER))
                                    .orElse(null)
                            : loader.section(e.value(), where, er -> {
                                Optional<URI> url = er.required("url").flatMap(a -> er.string(a, where + ".url")
                                        .flatMap(t -> er.parsed(a.location(), where + ".url", t, ConfigLoader::httpUri)));
                                Optional<GatewaySettings.UpstreamAuth> auth = er.optionalString("auth").flatMap(a -> er.parsed(
                                        er.map().location(), where + ".auth", a, ConfigLoader::upstreamAuth));
                                Optional<Long> body = er.optionalParsed("maxBodyBytes", Sizes::parse);
                                body.filter(b -> b < 1024 || b > (1L << 30)).ifPresent(b -> loader.problems.add(er.map(), where
                                        + ".maxBodyBytes must be between 1KiB and 1GiB"));
                                return url.map(x -> new GatewaySettings.Upstream(x, auth.orElse(GatewaySettings.UpstreamAuth.BEARER),
                                        body.map(java.util.OptionalLong::of).orElse(java.util.OptionalLong.empty())))
                                        .orElse(null);
                            });
                    if (up != null) {
                        upstreams.put(e.key(), up);
                    }
                }
            }));
            Optional<Path> ca = r.optional("caFile").flatMap(c -> r.string(c, "gateway.caFile").map(loader::path)
                    .filter(p -> loader.readable(c.location(), "gateway.caFile", p)));
            long max = r.optionalParsed("maxBodyBytes", Sizes::parse).orElse(GatewaySettings.DEFAULT_MAX_BODY);
            if (max < 1024 || max > (1L << 30)) {
                loader.problems.add(r.map(), "gateway.maxBodyBytes must be between 1KiB and 1GiB");
            }
            Duration timeout = r.optionalParsed("timeout", Durations::parse).orElse(GatewaySettings.DEFAULT_TIMEOUT);
            if (timeout.isZero() || timeout.isNegative() || timeout.compareTo(Duration.ofHours(1)) > 0) {
                loader.problems.add(r.map(), "gateway.timeout must be more than 0 and at most 1h");
            }
            GatewaySettings.Limits d = GatewaySettings.Limits.DEFAULT;
            int conns = (int) bounded(r, "maxConnections", d.maxConnections(), 1, 100_000);
            int perUid = (int) bounded(r, "maxConnectionsPerUid", d.maxConnectionsPerUid(), 1, 100_000);
            Duration idle = r.optionalParsed("idleTimeout", Durations::parse).orElse(d.idleTimeout());
            if (idle.isZero() || idle.isNegative() || idle.compareTo(Duration.ofHours(1)) > 0) {
                loader.problems.add(r.map(), "gateway.idleTimeout must be more than 0 and at most 1h");
            }
            long buffered = r.optionalParsed("maxBufferedBytes", Sizes::parse).orElse(d.maxBufferedBytes());
            if (buffered < max || buffered > (4L << 30)) {
                loader.problems.add(r.map(), "gateway.maxBufferedBytes must be at least gateway.maxBodyBytes (" + max
                        + ") and at most 4GiB");
            }
            int streams = (int) bounded(r, "maxStreamsPerConnection", d.maxStreamsPerConnection(), 1, 1000);
            long outTokens = bounded(r, "defaultMaxOutputTokens", d.defaultMaxOutputTokens(), 1, 10_000_000);
            boolean relay = r.optionalBoolean("socketRelay").orElse(true);
            return new GatewaySettings(listen, socket, upstreams, ca, max, timeout, mtls, new GatewaySettings.Limits(conns,
                    perUid, idle, buffered, streams, outTokens), relay);
        });
    }

    /** An optional whole number of {@code gateway.<name>} within [min, max], else {@code dflt}. */
    private long bounded(MappingReader r, String name, long dflt, long min, long max) {
        long v = r.optionalLong(name).orElse(dflt);
        if (v < min || v > max) {
            loader.problems.add(r.map(), "gateway." + name + " must be between " + min + " and " + max);
            return dflt;
        }
        return v;
    }
}
