package io.keywarden.daemon.fleet;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * The fleet's settings (the config's {@code fleet:} block, built by the loader): shared state
 * across nodes on Redis ({@code redis://} or {@code rediss://}; an ACL user and a password read
 * from a file) for fleet-wide token budgets and blocks. {@code opTimeout} bounds each Redis
 * operation a request waits for; without a CA file of its own, TLS trusts the JVM's CAs.
 */
public record FleetSettings(RedisTarget redis, Optional<String> user, Optional<Path> passwordFile, String keyPrefix,
                            Unavailable onUnavailable, Duration heartbeat, long reserveDefaultTokens, Duration opTimeout,
                            Optional<Path> caFile) {
    public FleetSettings(RedisTarget redis, Optional<String> user, Optional<Path> passwordFile, String keyPrefix,
                         Unavailable onUnavailable, Duration heartbeat, long reserveDefaultTokens, Duration opTimeout) {
        this(redis, user, passwordFile, keyPrefix, onUnavailable, heartbeat, reserveDefaultTokens, opTimeout,
                Optional.empty());
    }

    /** Fleet unavailable: each node enforces alone ({@code LOCAL}) or guarded gateway requests get 503 ({@code CLOSED}). */
    public enum Unavailable { LOCAL, CLOSED }

    public enum RedisKind { STANDALONE, SENTINEL, CLUSTER }

    /**
     * Where the fleet's Redis is: one server ({@code STANDALONE}, one endpoint), a master found
     * through Sentinel ({@code SENTINEL}: the sentinels' endpoints and the master's name) or a
     * Cluster ({@code CLUSTER}: seed endpoints, the rest found from them).
     */
    public record RedisTarget(RedisKind kind, List<URI> endpoints, Optional<String> master) {
        public RedisTarget {
            endpoints = List.copyOf(endpoints);
        }

        public static RedisTarget standalone(URI uri) {
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
}
