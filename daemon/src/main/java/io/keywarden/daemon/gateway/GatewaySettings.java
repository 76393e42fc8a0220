package io.keywarden.daemon.gateway;

import io.keywarden.daemon.net.HostPort;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * The gateway's settings (the config's {@code gateway:} block, built by the loader): a loopback
 * listener and/or a Unix socket; upstreams per key name (keys without one get their issuer type's
 * default, {@link Upstream#defaultFor}); bodies up to {@code maxBodyBytes}.
 */
public record GatewaySettings(Optional<HostPort> listen, Optional<Path> socket, Map<String, Upstream> upstreams,
                              Optional<Path> caFile, long maxBodyBytes, Duration timeout, Optional<Mtls> mtls,
                              Limits limits, boolean socketRelay) {
    public static final long DEFAULT_MAX_BODY = 4L << 20;
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(10);

    /**
     * {@code socketRelay} ({@code gateway.socketRelay}, default true): the Unix socket names each
     * request's writer through the kernel ({@link WriterRelay}) where it can (Linux 6.5+); false
     * proves callers by the pass over every process's descriptors, as on older kernels and TCP.
     */
    public GatewaySettings(Optional<HostPort> listen, Optional<Path> socket, Map<String, Upstream> upstreams,
                           Optional<Path> caFile, long maxBodyBytes, Duration timeout, Optional<Mtls> mtls, Limits limits) {
        this(listen, socket, upstreams, caFile, maxBodyBytes, timeout, mtls, limits, true);
    }

    public GatewaySettings(Optional<HostPort> listen, Optional<Path> socket, Map<String, Upstream> upstreams,
                           Optional<Path> caFile, long maxBodyBytes, Duration timeout, Optional<Mtls> mtls) {
        this(listen, socket, upstreams, caFile, maxBodyBytes, timeout, mtls, Limits.DEFAULT);
    }

    /**
     * What bounds the gateway whatever its callers do: open connections in all and per uid (the
     * socket's owner), how long a connection may sit with no request in progress, the request bodies
     * held in memory at once (each up to {@code maxBodyBytes}), HTTP/2 streams per connection, and
     * the output tokens reserved for a request that names no limit of its own.
     */
    public record Limits(int maxConnections, int maxConnectionsPerUid, Duration idleTimeout, long maxBufferedBytes,
                         int maxStreamsPerConnection, long defaultMaxOutputTokens) {
        public static final Limits DEFAULT = new Limits(1024, 128, Duration.ofSeconds(30), 64L << 20, 16, 4096);
    }

    /**
     * Remote callers over mutual TLS: keywarden's own X.509-SVID and bundle from the SPIRE Workload
     * API at {@code workloadApi} ({@code unix:///path}); the caller's SVID names its workload.
     */
    public record Mtls(HostPort listen, Path workloadApi) {
    }

    /** How an upstream takes the credential: {@code Authorization: Bearer}, {@code x-api-key} or {@code api-key}. */
    public enum UpstreamAuth { BEARER, X_API_KEY, API_KEY }

    /** One upstream: its base URL (the key's path after {@code /<key>/} is appended) and how it takes a credential. */
    public record Upstream(URI url, UpstreamAuth auth, OptionalLong maxBodyBytes) {
        public Upstream(URI url, UpstreamAuth auth) {
            this(url, auth, OptionalLong.empty());
        }

        /** The provider an issuer type mints for ({@code IssuerType.defaultUpstream}), when the config names no upstream for the key. */
        public static Optional<Upstream> defaultFor(String issuerType) {
            return io.keywarden.issuer.IssuerTypes.defaultUpstream(issuerType).map(u -> new Upstream(u, UpstreamAuth.BEARER));
        }
    }
}
