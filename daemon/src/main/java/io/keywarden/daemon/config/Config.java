package io.keywarden.daemon.config;

import io.keywarden.issuer.IssuerSpec;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** The daemon's configuration (`keywarden run --config`), validated and with every default applied. */
public record Config(String node, Path policy, Identity identity, Map<String, IssuerSpec> issuers, Delivery delivery,
                     Audit audit, Ops ops, Admin admin, boolean revokeOnShutdown, Tuning tuning, Extensions extensions) {

    public Config {
        issuers = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(issuers));
    }

    public enum IdentityProvider { SPIRE, DEV }

    public enum DeliveryMode { FUSE, TMPFS }

    /**
     * {@code devSigningKey}/{@code devIssuer}: {@code keywarden dev --signing-key/--issuer-url}, a dev
     * identity whose JWT-SVIDs a provider's federation can be told to trust once.
     */
    public record Identity(IdentityProvider provider, String audience, Path spireAdminSocket,
                           Optional<Path> devSigningKey, Optional<String> devIssuer) {
        public Identity(IdentityProvider provider, String audience, Path spireAdminSocket) {
            this(provider, audience, spireAdminSocket, Optional.empty(), Optional.empty());
        }
    }

    /** How to reach one Vault/OpenBao (an instance of type vault). */
    public record Vault(URI address, String namespace, String authMount, Optional<Path> caFile, Duration timeout) {
    }

    /** {@code requestTimeout}: the kernel's per-request FUSE timeout (6.14+); must exceed the issuer timeout. */
    public record Delivery(DeliveryMode mode, Path path, java.time.Duration requestTimeout) {
    }

    /** {@code retainBytes} 0 and {@code retainAge} null keep every segment; {@code group} may read the ledger (0640). */
    public record Audit(Path file, boolean stdout, long retainBytes, java.time.Duration retainAge,
                        java.util.Optional<String> group) {
        public Audit(Path file, boolean stdout) {
            this(file, stdout, 0, null, java.util.Optional.empty());
        }
    }

    public record Ops(HostPort listen) {
    }

    /**
     * The admin API's socket, and the handover socket a successor started with {@code --takeover}
     * asks for the mount and the leases (root only; default: {@code handover.sock} beside the admin socket).
     */
    public record Admin(Path socket, Path handoverSocket) {
        public Admin(Path socket) {
            this(socket, socket.resolveSibling("handover.sock"));
        }
    }

    /**
     * The daemon's tunables ({@code tuning:}), every one with a default that suits a node of a few
     * hundred workloads. {@code fuseWorkers} 0 means two per CPU (at least 4).
     */
    public record Tuning(int fuseWorkers, int issuerThreads, int attestThreads, Duration openTimeout,
                         Duration readinessInterval, Duration policyPollInterval, Duration spireTimeout) {
        public static final Tuning DEFAULT = new Tuning(0, 8, 4, Duration.ofSeconds(10), Duration.ofSeconds(10),
                Duration.ofSeconds(2), Duration.ofSeconds(5));

        public Tuning withOpenTimeout(Duration d) {
            return new Tuning(fuseWorkers, issuerThreads, attestThreads, d, readinessInterval, policyPollInterval,
                    spireTimeout);
        }
    }

    /**
     * The optional parts around the core (issue 16): the gateway, the usage-API sensor, the policy
     * hook and the metric exports. {@link #NONE}: none of them.
     */
    public record Extensions(Optional<Gateway> gateway, Optional<UsageApi> usage, Optional<PolicyHook> policyHook,
                             MetricsExport metrics, Optional<Csi> csi, Optional<Fleet> fleet) {
        public static final Extensions NONE = new Extensions(Optional.empty(), Optional.empty(), Optional.empty(),
                MetricsExport.NONE, Optional.empty(), Optional.empty());

        public Extensions(Optional<Gateway> gateway, Optional<UsageApi> usage, Optional<PolicyHook> policyHook,
                          MetricsExport metrics) {
            this(gateway, usage, policyHook, metrics, Optional.empty(), Optional.empty());
        }

        public Extensions withCsi(Optional<Csi> c) {
            return new Extensions(gateway, usage, policyHook, metrics, c, fleet);
        }
    }

    /** Fleet unavailable: each node enforces alone ({@code LOCAL}) or guarded gateway requests get 503 ({@code CLOSED}). */
    public enum FleetUnavailable { LOCAL, CLOSED }

    /**
     * Shared state across nodes on Redis ({@code redis://} or {@code rediss://}; an ACL user and a
     * password read from a file): fleet-wide token budgets and blocks. {@code opTimeout} bounds
     * each Redis operation a request waits for.
     */
    public record Fleet(RedisTarget redis, Optional<String> user, Optional<Path> passwordFile, String keyPrefix,
                        FleetUnavailable onUnavailable, Duration heartbeat, long reserveDefaultTokens, Duration opTimeout,
                        Optional<Path> caFile) {
        /** Without a CA file of its own: TLS ({@code rediss://}) trusts the JVM's CAs. */
        public Fleet(RedisTarget redis, Optional<String> user, Optional<Path> passwordFile, String keyPrefix,
                     FleetUnavailable onUnavailable, Duration heartbeat, long reserveDefaultTokens, Duration opTimeout) {
            this(redis, user, passwordFile, keyPrefix, onUnavailable, heartbeat, reserveDefaultTokens, opTimeout,
                    Optional.empty());
        }
    }

    /**
     * Where the fleet's Redis is: one server ({@code STANDALONE}, one endpoint), a master found
     * through Sentinel ({@code SENTINEL}: the sentinels' endpoints and the master's name) or a
     * Cluster ({@code CLUSTER}: seed endpoints, the rest found from them).
     */
    public record RedisTarget(RedisKind kind, List<java.net.URI> endpoints, Optional<String> master) {
        public RedisTarget {
            endpoints = List.copyOf(endpoints);
        }

        public static RedisTarget standalone(java.net.URI uri) {
            return new RedisTarget(RedisKind.STANDALONE, List.of(uri), Optional.empty());
        }

        /** For log lines and {@code fleet status}: never a credential (URLs hold none). */
        @Override
        public String toString() {
            return switch (kind) {
                case STANDALONE -> endpoints.get(0).toString();
                case SENTINEL -> "master " + master.orElse("?") + " via sentinels " + endpoints;
                case CLUSTER -> "cluster " + endpoints;
            };
        }
    }

    public enum RedisKind { STANDALONE, SENTINEL, CLUSTER }

    /** The CSI node plugin ({@code csi.keywarden.io}): its socket and the node id it reports (default: {@code node}). */
    public record Csi(Path socket, Optional<String> nodeId) {
    }

    /**
     * Gateway mode: a loopback listener and/or a Unix socket; upstreams per key name (keys without
     * one get their issuer type's default, {@link Upstream#defaultFor}); bodies up to {@code maxBodyBytes}.
     */
    public record Gateway(Optional<HostPort> listen, Optional<Path> socket, Map<String, Upstream> upstreams,
                          Optional<Path> caFile, long maxBodyBytes, Duration timeout, Optional<Mtls> mtls,
                          GatewayLimits limits) {
        public static final long DEFAULT_MAX_BODY = 4L << 20;
        public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(10);

        public Gateway(Optional<HostPort> listen, Optional<Path> socket, Map<String, Upstream> upstreams,
                       Optional<Path> caFile, long maxBodyBytes, Duration timeout, Optional<Mtls> mtls) {
            this(listen, socket, upstreams, caFile, maxBodyBytes, timeout, mtls, GatewayLimits.DEFAULT);
        }
    }

    /**
     * What bounds the gateway whatever its callers do: open connections in all and per uid (the
     * socket's owner), how long a connection may sit with no request in progress, the request bodies
     * held in memory at once (each up to {@code maxBodyBytes}), HTTP/2 streams per connection, and
     * the output tokens reserved for a request that names no limit of its own.
     */
    public record GatewayLimits(int maxConnections, int maxConnectionsPerUid, Duration idleTimeout,
                                long maxBufferedBytes, int maxStreamsPerConnection, long defaultMaxOutputTokens) {
        public static final GatewayLimits DEFAULT = new GatewayLimits(1024, 128, Duration.ofSeconds(30), 64L << 20, 16,
                4096);
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
    public record Upstream(URI url, UpstreamAuth auth, java.util.OptionalLong maxBodyBytes) {
        public Upstream(URI url, UpstreamAuth auth) {
            this(url, auth, java.util.OptionalLong.empty());
        }

        /** The provider an issuer type mints for ({@code IssuerType.defaultUpstream}), when the config names no upstream for the key. */
        public static Optional<Upstream> defaultFor(String issuerType) {
            return io.keywarden.issuer.IssuerTypes.defaultUpstream(issuerType).map(u -> new Upstream(u, UpstreamAuth.BEARER));
        }
    }

    /** OpenAI's organization usage API, polled for file-mode keys with an admin key read from a file. */
    public record UsageApi(URI url, Path adminKeyFile, Duration interval) {
    }

    /** An OPA decision per gateway request and per issuance. */
    public record PolicyHook(URI url, Duration timeout, boolean failClosed) {
    }

    /** Optional exports besides /metrics: DogStatsD (or plain StatsD) and OTLP over HTTP. */
    public record MetricsExport(Optional<StatsD> statsd, Optional<URI> otlp, Duration step) {
        public static final MetricsExport NONE = new MetricsExport(Optional.empty(), Optional.empty(),
                Duration.ofSeconds(10));
    }

    /** {@code flavor}: datadog, etsy or telegraf (Micrometer's StatsD flavours). */
    public record StatsD(String host, int port, String flavor) {
    }
}
