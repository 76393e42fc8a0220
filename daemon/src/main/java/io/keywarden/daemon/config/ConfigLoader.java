package io.keywarden.daemon.config;

import io.keywarden.daemon.runtime.Tuning;
import io.keywarden.daemon.runtime.IdentitySettings;
import io.keywarden.daemon.runtime.Extensions;
import io.keywarden.daemon.runtime.DeliveryMode;
import io.keywarden.daemon.runtime.DefaultPaths;
import io.keywarden.daemon.ops.MetricsExport;
import io.keywarden.daemon.net.HostPort;
import io.keywarden.daemon.hook.HookSettings;
import io.keywarden.daemon.guard.UsageApiSettings;
import io.keywarden.daemon.gateway.GatewaySettings;
import io.keywarden.daemon.fleet.FleetSettings;
import io.keywarden.daemon.csi.CsiSettings;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.policy.Durations;
import io.keywarden.policy.yaml.Location;
import io.keywarden.policy.yaml.MappingReader;
import io.keywarden.policy.yaml.Problems;
import io.keywarden.policy.yaml.ProblemsException;
import io.keywarden.policy.yaml.YamlNode;
import io.keywarden.policy.yaml.YamlScalar;
import io.keywarden.policy.yaml.YamlReader;
import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * Loads the config file with the same strictness as the policy: unknown keys, wrong types and bad
 * values are all reported at once as {@code FILE:LINE:COL: message}. Plain YAML, no templating.
 * Relative paths are resolved against the config file's directory.
 *
 * <p>Over 400 lines on purpose, as {@code PolicyLoader}: a method per section of one file, sharing
 * its problems and its base directory.
 */
public final class ConfigLoader {
    public static final Path DEFAULT_SPIRE_ADMIN_SOCKET = Path.of("/run/spire/admin/admin.sock");
    public static final Path DEFAULT_MOUNT = DefaultPaths.MOUNT;
    URI url(MappingReader r, String where, String dflt) {
        return url(r, where, "url", dflt);
    }

    /** An http(s) endpoint ({@code key}), defaulting to the provider's own. */
    URI url(MappingReader r, String where, String key, String dflt) {
        return r.optional(key).flatMap(a -> r.string(a, where + "." + key)
                .flatMap(s -> r.parsed(a.location(), where + "." + key, s, ConfigLoader::httpUri)))
                .orElse(URI.create(dflt));
    }

    /** A non-empty string; required when {@code dflt} is null. */
    String nonEmpty(MappingReader r, String where, String key, String dflt) {
        Optional<String> v = dflt == null ? r.requiredString(key) : r.optionalString(key);
        String out = v.orElse(dflt);
        if (out != null && out.isBlank()) {
            problems.add(r.map(), where + "." + key + " must not be empty");
        }
        return out;
    }

    Duration timeout(MappingReader r, String where) {
        Duration timeout = r.optionalParsed("timeout", Durations::parse).orElse(Duration.ofSeconds(10));
        if (timeout.isZero() || timeout.compareTo(Duration.ofMinutes(5)) > 0) {
            problems.add(r.map(), where + ".timeout must be more than 0 and at most 5m");
        }
        return timeout;
    }

    /** Longer than any issuance an OPEN may wait for (the issuer timeout), so only a stuck daemon trips it. */
    public static final Duration DEFAULT_FUSE_REQUEST_TIMEOUT = Duration.ofSeconds(60);
    public static final Path DEFAULT_AUDIT = Path.of("/var/log/keywarden/audit.jsonl");
    public static final HostPort DEFAULT_LISTEN = new HostPort("127.0.0.1", 9464);
    public static final Path DEFAULT_ADMIN_SOCKET = DefaultPaths.ADMIN_SOCKET;

    final Problems problems = new Problems();
    private final Path baseDir;
    private final Map<String, String> env;

    private ConfigLoader(Path baseDir, Map<String, String> env) {
        this.baseDir = baseDir;
        this.env = env;
    }

    public static Config load(Path file) throws ProblemsException {
        return load(file, System.getenv());
    }

    public static Config load(Path file, Map<String, String> env) throws ProblemsException {
        Path dir = file.toAbsolutePath().getParent();
        YamlNode root = YamlReader.read(file, file.toString());
        return new ConfigLoader(dir, env).build(root);
    }

    private Config build(YamlNode root) throws ProblemsException {
        MappingReader r = MappingReader.of(root, "the config", problems).orElse(null);
        if (r == null) {
            problems.throwIfAny();
        }
        String node = r.optionalString("node").orElseGet(this::defaultNode);
        Optional<Path> policy = r.required("policy").flatMap(n -> r.string(n, "policy")).map(this::path);
        IdentitySettings identity = r.optional("identity").map(this::identity)
                .orElse(new IdentitySettings(IdentitySettings.Provider.SPIRE, "vault", DEFAULT_SPIRE_ADMIN_SOCKET));
        String audience = identity == null ? "vault" : identity.audience();
        Optional<YamlNode> oldIssuer = r.optional("issuer");
        Optional<YamlNode> issuersNode = r.optional("issuers");
        Map<String, IssuerSpec> issuers = new LinkedHashMap<>();
        if (oldIssuer.isPresent() && issuersNode.isPresent()) {
            problems.add(oldIssuer.get(), "the config has both 'issuer' and 'issuers': keep one ('issuers' names"
                    + " instances; 'issuer' is the older single-issuer form)");
        } else if (oldIssuer.isPresent()) {
            Optional.ofNullable(new IssuersSection(this).issuer(oldIssuer.get(), audience)).ifPresent(i -> issuers.put(i.name(), i));
        } else if (issuersNode.isPresent()) {
            new IssuersSection(this).issuers(issuersNode.get(), audience, issuers);
        } else {
            problems.add(r.map(), "the config: missing required key 'issuers' (or the single-issuer form 'issuer')");
        }
        Config.Delivery delivery = r.optional("delivery").map(this::delivery)
                .orElse(new Config.Delivery(DeliveryMode.FUSE, DEFAULT_MOUNT, DEFAULT_FUSE_REQUEST_TIMEOUT));
        Config.Audit audit = r.optional("audit").map(this::audit).orElse(new Config.Audit(DEFAULT_AUDIT, false));
        Config.Ops ops = r.optional("ops").map(this::ops).orElse(new Config.Ops(DEFAULT_LISTEN));
        Config.Admin admin = r.optional("admin").map(this::admin).orElse(new Config.Admin(DEFAULT_ADMIN_SOCKET));
        boolean revokeOnShutdown = r.optionalBoolean("revokeOnShutdown").orElse(true);
        Tuning tuning = r.optional("tuning").map(this::tuning).orElse(Tuning.DEFAULT);
        Optional<GatewaySettings> gateway = r.optional("gateway").map(n -> new GatewaySection(this).read(n));
        Optional<UsageApiSettings> usage = r.optional("usage").map(this::usage);
        Optional<HookSettings> hook = r.optional("policyHook").map(this::policyHook);
        MetricsExport metrics = r.optional("metrics").map(this::metrics).orElse(MetricsExport.NONE);
        Optional<CsiSettings> csi = r.optional("csi").map(n -> section(n, "csi", cr -> {
            Optional<Path> sock = absolute(cr, "csi.socket", "socket");
            if (sock.isEmpty()) {
                problems.add(cr.map(), "csi: missing required key 'socket' (e.g. /var/lib/kubelet/plugins/csi.keywarden.io/csi.sock)");
            }
            Optional<String> nodeId = cr.optionalString("nodeId");
            return sock.map(p -> new CsiSettings(p, nodeId)).orElse(null);
        }));
        Optional<FleetSettings> fleet = r.optional("fleet").map(n -> new FleetSection(this).read(n));
        r.rejectUnknown();
        if (node.isBlank()) {
            problems.add(r.map(), "node must not be empty");
        }
        problems.throwIfAny();
        return new Config(node, policy.orElseThrow(), identity, issuers, delivery, audit, ops, admin, revokeOnShutdown,
                tuning == null ? Tuning.DEFAULT : tuning, new Extensions(gateway, usage, hook,
                metrics == null ? MetricsExport.NONE : metrics, csi, fleet));
    }

    private String defaultNode() {
        String n = env.get("NODE_NAME");
        if (n != null && !n.isBlank()) {
            return n;
        }
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "localhost";
        }
    }

    Path path(String text) {
        Path p = Path.of(text);
        return p.isAbsolute() ? p.normalize() : baseDir.resolve(p).normalize();
    }

    <E extends Enum<E>> Optional<E> choice(MappingReader r, String where, String key, Class<E> type, E dflt) {
        Optional<YamlNode> n = r.optional(key);
        if (n.isEmpty()) {
            return Optional.ofNullable(dflt);
        }
        return r.string(n.get(), where + "." + key).flatMap(s -> {
            for (E e : type.getEnumConstants()) {
                if (e.name().toLowerCase(Locale.ROOT).equals(s)) {
                    return Optional.of(e);
                }
            }
            StringBuilder allowed = new StringBuilder();
            for (E e : type.getEnumConstants()) {
                allowed.append(allowed.length() == 0 ? "" : " | ").append(e.name().toLowerCase(Locale.ROOT));
            }
            problems.add(n.get(), where + "." + key + ": '" + s + "' is not one of " + allowed);
            return Optional.empty();
        });
    }

    <T> T section(YamlNode n, String where, Function<MappingReader, T> read) {
        return MappingReader.of(n, where, problems).map(r -> {
            T t = read.apply(r);
            r.rejectUnknown();
            return t;
        }).orElse(null);
    }

    private IdentitySettings identity(YamlNode n) {
        return section(n, "identity", r -> {
            var provider = choice(r, "identity", "provider", IdentitySettings.Provider.class, IdentitySettings.Provider.SPIRE);
            String audience = r.optionalString("audience").orElse("vault");
            if (audience.isBlank()) {
                problems.add(r.map(), "identity.audience must not be empty");
            }
            Path socket = r.optional("spire").map(s -> section(s, "identity.spire", sr ->
                    sr.optionalString("adminSocket").map(this::path).orElse(DEFAULT_SPIRE_ADMIN_SOCKET)))
                    .orElse(DEFAULT_SPIRE_ADMIN_SOCKET);
            return new IdentitySettings(provider.orElse(null), audience, socket);
        });
    }

    boolean readable(Location at, String what, Path p) {
        if (!Files.isRegularFile(p)) {
            problems.add(at, what + ": " + p + " is not a file");
            return false;
        }
        if (!Files.isReadable(p)) {
            problems.add(at, what + ": " + p + " is not readable");
            return false;
        }
        return true;
    }

    /** An http(s) URL without user, query or fragment; IllegalArgumentException naming what is wrong. */
    public static URI httpUriOf(String s) {
        return httpUri(s);
    }

    static URI httpUri(String s) {
        try {
            URI u = new URI(s);
            if (!"https".equals(u.getScheme()) && !"http".equals(u.getScheme())) {
                throw new IllegalArgumentException("'" + s + "' must be an http:// or https:// URL");
            }
            if (u.getHost() == null) {
                throw new IllegalArgumentException("'" + s + "' has no host");
            }
            if (u.getRawQuery() != null || u.getRawFragment() != null || u.getUserInfo() != null) {
                throw new IllegalArgumentException("'" + s + "' must not carry a user, query or fragment");
            }
            return u;
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("'" + s + "' is not a URL: " + e.getReason());
        }
    }

    private Config.Delivery delivery(YamlNode n) {
        return section(n, "delivery", r -> {
            var mode = choice(r, "delivery", "mode", DeliveryMode.class, DeliveryMode.FUSE);
            Path path = absolute(r, "delivery.path", "path").orElse(DEFAULT_MOUNT);
            Duration timeout = r.optionalParsed("requestTimeout", Durations::parse).orElse(DEFAULT_FUSE_REQUEST_TIMEOUT);
            if (timeout.isNegative() || timeout.toSeconds() > 65535) {
                problems.add(n, "delivery.requestTimeout must be between 0s (none) and 65535s");
            }
            return new Config.Delivery(mode.orElse(null), path, timeout);
        });
    }

    Optional<Path> absolute(MappingReader r, String what, String key) {
        return r.optional(key).flatMap(v -> r.string(v, what).flatMap(s -> {
            Path p = Path.of(s);
            if (!p.isAbsolute()) {
                problems.add(v, what + " '" + s + "' must be an absolute path");
                return Optional.empty();
            }
            return Optional.of(p.normalize());
        }));
    }

    private Config.Audit audit(YamlNode n) {
        return section(n, "audit", r -> {
            Path file = r.optionalString("file").map(this::path).orElse(DEFAULT_AUDIT);
            boolean stdout = r.optionalBoolean("stdout").orElse(false);
            long[] bytes = {0};
            Duration[] age = {null};
            r.optional("retain").ifPresent(v -> section(v, "audit.retain", rr -> {
                rr.optional("size").flatMap(x -> rr.string(x, "audit.retain.size")).ifPresent(text -> {
                    try {
                        bytes[0] = Sizes.parse(text);
                        if (bytes[0] < 1 << 20) {
                            problems.add(v, "audit.retain.size must be at least 1MiB, not " + text);
                        }
                    } catch (IllegalArgumentException e) {
                        problems.add(v, "audit.retain.size: " + e.getMessage());
                    }
                });
                age[0] = rr.optionalParsed("age", Durations::parse).orElse(null);
                return null;
            }));
            Optional<String> group = r.optionalString("group");
            return new Config.Audit(file, stdout, bytes[0], age[0], group);
        });
    }

    private Tuning tuning(YamlNode n) {
        Tuning d = Tuning.DEFAULT;
        return section(n, "tuning", r -> new Tuning(
                count(r, "fuseWorkers", d.fuseWorkers(), 0, 256),
                count(r, "issuerThreads", d.issuerThreads(), 1, 256),
                count(r, "attestThreads", d.attestThreads(), 1, 256),
                within(r, "openTimeout", d.openTimeout(), Duration.ofSeconds(1), Duration.ofMinutes(5)),
                within(r, "readinessInterval", d.readinessInterval(), Duration.ofSeconds(1), Duration.ofMinutes(10)),
                within(r, "policyPollInterval", d.policyPollInterval(), Duration.ofMillis(100), Duration.ofMinutes(10)),
                within(r, "spireTimeout", d.spireTimeout(), Duration.ofMillis(100), Duration.ofMinutes(1)),
                r.optionalBoolean("fuseIoUring").orElse(d.fuseIoUring()),
                count(r, "gatewayEventLoops", d.gatewayEventLoops(), 0, 256)));
    }

    private int count(MappingReader r, String key, int dflt, int min, int max) {
        return r.optional(key).map(v -> {
            if (v instanceof YamlScalar s && s.kind() == YamlScalar.Kind.INTEGER) {
                try {
                    int i = Integer.parseInt(s.text());
                    if (i >= min && i <= max) {
                        return i;
                    }
                } catch (NumberFormatException e) {
                    // reported below
                }
            }
            problems.add(v, "tuning." + key + " must be a whole number from " + min + " to " + max + ", not "
                    + v.describe());
            return dflt;
        }).orElse(dflt);
    }

    private Duration within(MappingReader r, String key, Duration dflt, Duration min, Duration max) {
        Duration d = r.optionalParsed(key, Durations::parse).orElse(dflt);
        if (d.compareTo(min) < 0 || d.compareTo(max) > 0) {
            problems.add(r.map(), "tuning." + key + " must be between " + Durations.format(min) + " and "
                    + Durations.format(max));
            return dflt;
        }
        return d;
    }

    private Config.Ops ops(YamlNode n) {
        return section(n, "ops", r -> new Config.Ops(r.optionalParsed("listen", HostPort::parse).orElse(DEFAULT_LISTEN)));
    }

    private Config.Admin admin(YamlNode n) {
        return section(n, "admin", r -> {
            Path socket = absolute(r, "admin.socket", "socket").orElse(DEFAULT_ADMIN_SOCKET);
            return new Config.Admin(socket, absolute(r, "admin.handoverSocket", "handoverSocket")
                    .orElse(socket.resolveSibling("handover.sock")));
        });
    }

    /** {@code unix:///abs/path} → the path. */
    static Path unixAddress(String s) {
        if (!s.startsWith("unix:///")) {
            throw new IllegalArgumentException("'" + s + "' must be unix:///absolute/path");
        }
        return Path.of(s.substring("unix://".length())).normalize();
    }

    static GatewaySettings.UpstreamAuth upstreamAuth(String s) {
        return switch (s) {
            case "bearer" -> GatewaySettings.UpstreamAuth.BEARER;
            case "x-api-key" -> GatewaySettings.UpstreamAuth.X_API_KEY;
            case "api-key" -> GatewaySettings.UpstreamAuth.API_KEY;
            default -> throw new IllegalArgumentException("'" + s + "' is not one of bearer | x-api-key | api-key");
        };
    }

    static boolean isLoopback(String host) {
        return host.equals("localhost") || host.startsWith("127.") || host.equals("::1");
    }

    /** {@code usage: {openai: {url, adminKeyFile, interval}}}. */
    private UsageApiSettings usage(YamlNode n) {
        return section(n, "usage", r -> r.required("openai").map(o -> section(o, "usage.openai", or -> {
            URI url = url(or, "usage.openai", "https://api.openai.com/v1");
            Optional<Path> keyFile = or.required("adminKeyFile").flatMap(k -> or.string(k, "usage.openai.adminKeyFile")
                    .map(this::path).filter(p -> readable(k.location(), "usage.openai.adminKeyFile", p)));
            Duration interval = within(or, "interval", Duration.ofSeconds(60), Duration.ofSeconds(1), Duration.ofHours(1));
            return keyFile.map(k -> new UsageApiSettings(url, k, interval)).orElse(null);
        })).orElse(null));
    }

    /** {@code policyHook: {opa: {url, timeout, failClosed}}}. */
    private HookSettings policyHook(YamlNode n) {
        return section(n, "policyHook", r -> r.required("opa").map(o -> section(o, "policyHook.opa", or -> {
            Optional<URI> url = or.required("url").flatMap(a -> or.string(a, "policyHook.opa.url")
                    .flatMap(t -> or.parsed(a.location(), "policyHook.opa.url", t, ConfigLoader::httpUri)));
            Duration timeout = within(or, "timeout", Duration.ofMillis(200), Duration.ofMillis(1), Duration.ofSeconds(30));
            boolean failClosed = or.optionalBoolean("failClosed").orElse(true);
            return url.map(u -> new HookSettings(u, timeout, failClosed)).orElse(null);
        })).orElse(null));
    }

    /** {@code metrics: {statsd: {host, port, flavor}, otlp: {url}, step}}. */
    private MetricsExport metrics(YamlNode n) {
        return section(n, "metrics", r -> {
            Optional<MetricsExport.StatsD> statsd = r.optional("statsd").map(s -> section(s, "metrics.statsd", sr -> {
                String host = nonEmpty(sr, "metrics.statsd", "host", "127.0.0.1");
                int port = count(sr, "port", 8125, 1, 65535);
                String flavor = sr.optionalString("flavor").orElse("datadog");
                if (!java.util.Set.of("datadog", "etsy", "telegraf").contains(flavor)) {
                    problems.add(sr.map(), "metrics.statsd.flavor '" + flavor + "' is not one of datadog | etsy | telegraf");
                }
                return new MetricsExport.StatsD(host, port, flavor);
            }));
            Optional<URI> otlp = r.optional("otlp").map(o -> section(o, "metrics.otlp", or -> url(or, "metrics.otlp",
                    "http://127.0.0.1:4318/v1/metrics")));
            Duration step = within(r, "step", Duration.ofSeconds(10), Duration.ofSeconds(1), Duration.ofMinutes(5));
            return new MetricsExport(statsd, otlp, step);
        });
    }
}
