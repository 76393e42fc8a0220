package io.keywarden.daemon.config;

import io.keywarden.daemon.fleet.FleetSettings;
import io.keywarden.policy.Durations;
import io.keywarden.policy.yaml.YamlList;
import io.keywarden.policy.yaml.YamlMap;
import io.keywarden.policy.yaml.YamlNode;
import io.keywarden.policy.yaml.YamlScalar;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** The config's {@code fleet:} section, read with the loader's problems and helpers. */
final class FleetSection extends ConfigSection {
    FleetSection(ConfigLoader loader) {
        super(loader);
    }

    /** {@code fleet:}: Redis, its credentials, the key prefix, and what a node does when Redis is unreachable. */
    FleetSettings read(YamlNode n) {
        return loader.section(n, "fleet", r -> {
            Optional<FleetSettings.RedisTarget> redis = r.required("redis").flatMap(this::redisTarget);
            Optional<String> user = r.optionalString("user");
            Optional<Path> password = r.optional("passwordFile").flatMap(c -> r.string(c, "fleet.passwordFile")
                    .map(loader::path).filter(p -> loader.readable(c.location(), "fleet.passwordFile", p)));
            String prefix = r.optionalString("keyPrefix").orElse("kw:");
            if (prefix.contains("{") || prefix.contains("}") || prefix.length() > 64) {
                loader.problems.add(r.map(), "fleet.keyPrefix must hold no braces (they are the hash tags) and at most 64 characters");
            }
            FleetSettings.Unavailable on = loader.choice(r, "fleet", "onUnavailable", FleetSettings.Unavailable.class,
                    FleetSettings.Unavailable.LOCAL).orElse(FleetSettings.Unavailable.LOCAL);
            Duration heartbeat = r.optionalParsed("heartbeat", Durations::parse).orElse(Duration.ofSeconds(5));
            Duration timeout = r.optionalParsed("opTimeout", Durations::parse).orElse(Duration.ofMillis(500));
            if (timeout.isZero() || timeout.isNegative() || timeout.compareTo(Duration.ofSeconds(30)) > 0) {
                loader.problems.add(r.map(), "fleet.opTimeout must be more than 0 and at most 30s");
            }
            long reserve = r.optionalLong("reserveDefaultTokens").orElse(4096L);
            if (reserve < 1) {
                loader.problems.add(r.map(), "fleet.reserveDefaultTokens must be at least 1");
            }
            Optional<Path> ca = r.optional("caFile").flatMap(c -> r.string(c, "fleet.caFile")
                    .map(loader::path).filter(p -> loader.readable(c.location(), "fleet.caFile", p)));
            return redis.map(u -> new FleetSettings(u, user, password, prefix, on, heartbeat, reserve, timeout, ca))
                    .orElse(null);
        });
    }

    /**
     * {@code fleet.redis}: a URL (one server), {@code {sentinel: [URL, …], master: NAME}} or
     * {@code {cluster: [URL, …]}} (seed nodes).
     */
    private Optional<FleetSettings.RedisTarget> redisTarget(YamlNode x) {
        if (!(x instanceof YamlMap)) {
            return standaloneTarget(x);
        }
        return Optional.ofNullable(loader.section(x, "fleet.redis", r -> {
            Optional<YamlNode> sentinel = r.optional("sentinel");
            Optional<YamlNode> cluster = r.optional("cluster");
            Optional<String> master = r.optionalString("master");
            if (sentinel.isPresent() == cluster.isPresent()) {
                loader.problems.add(r.map(), "fleet.redis must name either 'sentinel' (with 'master') or 'cluster', not "
                        + (sentinel.isPresent() ? "both" : "neither"));
                return null;
            }
            if (cluster.isPresent()) {
                if (master.isPresent()) {
                    loader.problems.add(r.map(), "fleet.redis.master belongs with 'sentinel', not 'cluster'");
                }
                List<URI> seeds = redisList(cluster.get(), "fleet.redis.cluster");
                return seeds.isEmpty() ? null : new FleetSettings.RedisTarget(FleetSettings.RedisKind.CLUSTER, seeds, Optional.empty());
            }
            if (master.isEmpty() || master.get().isBlank()) {
                loader.problems.add(r.map(), "fleet.redis.sentinel needs 'master': the name the sentinels monitor");
                return null;
            }
            List<URI> sentinels = redisList(sentinel.get(), "fleet.redis.sentinel");
            return sentinels.isEmpty() ? null : new FleetSettings.RedisTarget(FleetSettings.RedisKind.SENTINEL, sentinels, master);
        }));
    }

    private Optional<FleetSettings.RedisTarget> standaloneTarget(YamlNode x) {
        if (!(x instanceof YamlScalar sc)) {
            loader.problems.add(x, "fleet.redis must be a redis:// URL, {sentinel: [...], master: NAME} or {cluster: [...]}; found "
                    + x.describe());
            return Optional.empty();
        }
        try {
            return Optional.of(FleetSettings.RedisTarget.standalone(redisUri(sc.text())));
        } catch (IllegalArgumentException e) {
            loader.problems.add(x, "fleet.redis: " + e.getMessage());
            return Optional.empty();
        }
    }

    /** A non-empty list of redis:// URLs at {@code where}; empty (with a problem) when it is not one. */
    private List<URI> redisList(YamlNode n, String where) {
        if (!(n instanceof YamlList l) || l.items().isEmpty()) {
            loader.problems.add(n, where + " must be a non-empty list of redis:// URLs; found " + n.describe());
            return List.of();
        }
        List<URI> out = new ArrayList<>();
        for (YamlNode item : l.items()) {
            if (!(item instanceof YamlScalar sc)) {
                loader.problems.add(item, where + ": each entry must be a redis:// URL; found " + item.describe());
                continue;
            }
            try {
                out.add(redisUri(sc.text()));
            } catch (IllegalArgumentException e) {
                loader.problems.add(item, where + ": " + e.getMessage());
            }
        }
        return out.size() == l.items().size() ? out : List.of();
    }

    /** {@code s} with anything between "//" and "@" cut out (a URL's credentials never reach an error). */
    static String withoutCredentials(String s) {
        return s.replaceAll("//[^/@]*@", "//…@");
    }

    static URI redisUri(String s) {
        URI u;
        try {
            u = new URI(s.trim());
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("'" + withoutCredentials(s) + "' is not a URL: must be redis://HOST:PORT or"
                    + " rediss://HOST:PORT");
        }
        if (!"redis".equals(u.getScheme()) && !"rediss".equals(u.getScheme()) || u.getHost() == null) {
            throw new IllegalArgumentException("'" + withoutCredentials(s) + "' must be redis://HOST:PORT or rediss://HOST:PORT");
        }
        if (u.getUserInfo() != null) {
            throw new IllegalArgumentException("put no credentials in the URL: use fleet.user and fleet.passwordFile");
        }
        return u;
    }
}
