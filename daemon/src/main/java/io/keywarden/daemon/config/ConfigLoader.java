package io.keywarden.daemon.config;

import io.keywarden.policy.Durations;
import io.keywarden.policy.Names;
import io.keywarden.policy.yaml.Location;
import io.keywarden.policy.yaml.MappingReader;
import io.keywarden.policy.yaml.Problems;
import io.keywarden.policy.yaml.ProblemsException;
import io.keywarden.policy.yaml.YamlList;
import io.keywarden.policy.yaml.YamlMap;
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
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * Loads the config file with the same strictness as the policy: unknown keys, wrong types and bad
 * values are all reported at once as {@code FILE:LINE:COL: message}. Plain YAML, no templating.
 * Relative paths are resolved against the config file's directory.
 *
 * <p>Over 300 lines on purpose, as {@code PolicyLoader}: a method per section of one file, sharing
 * its problems and its base directory.
 */
public final class ConfigLoader {
    public static final Path DEFAULT_SPIRE_ADMIN_SOCKET = Path.of("/run/spire/admin/admin.sock");
    public static final Path DEFAULT_MOUNT = Path.of("/run/keywarden");
    /** Longer than any issuance an OPEN may wait for (the issuer timeout), so only a stuck daemon trips it. */
    public static final Duration DEFAULT_FUSE_REQUEST_TIMEOUT = Duration.ofSeconds(60);
    public static final Path DEFAULT_AUDIT = Path.of("/var/log/keywarden/audit.jsonl");
    public static final HostPort DEFAULT_LISTEN = new HostPort("127.0.0.1", 9464);
    public static final Path DEFAULT_ADMIN_SOCKET = Path.of("/run/keywarden-admin/admin.sock");

    private final Problems problems = new Problems();
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
        Config.Identity identity = r.optional("identity").map(this::identity)
                .orElse(new Config.Identity(Config.IdentityProvider.SPIRE, "vault", DEFAULT_SPIRE_ADMIN_SOCKET));
        String audience = identity == null ? "vault" : identity.audience();
        Optional<YamlNode> oldIssuer = r.optional("issuer");
        Optional<YamlNode> issuersNode = r.optional("issuers");
        Map<String, IssuerSpec> issuers = new LinkedHashMap<>();
        if (oldIssuer.isPresent() && issuersNode.isPresent()) {
            problems.add(oldIssuer.get(), "the config has both 'issuer' and 'issuers': keep one ('issuers' names"
                    + " instances; 'issuer' is the older single-issuer form)");
        } else if (oldIssuer.isPresent()) {
            Optional.ofNullable(issuer(oldIssuer.get(), audience)).ifPresent(i -> issuers.put(i.name(), i));
        } else if (issuersNode.isPresent()) {
            issuers(issuersNode.get(), audience, issuers);
        } else {
            problems.add(r.map(), "the config: missing required key 'issuers' (or the single-issuer form 'issuer')");
        }
        Config.Delivery delivery = r.optional("delivery").map(this::delivery)
                .orElse(new Config.Delivery(Config.DeliveryMode.FUSE, DEFAULT_MOUNT, DEFAULT_FUSE_REQUEST_TIMEOUT));
        Config.Audit audit = r.optional("audit").map(this::audit).orElse(new Config.Audit(DEFAULT_AUDIT, false));
        Config.Ops ops = r.optional("ops").map(this::ops).orElse(new Config.Ops(DEFAULT_LISTEN));
        Config.Admin admin = r.optional("admin").map(this::admin).orElse(new Config.Admin(DEFAULT_ADMIN_SOCKET));
        boolean revokeOnShutdown = r.optionalBoolean("revokeOnShutdown").orElse(true);
        Config.Tuning tuning = r.optional("tuning").map(this::tuning).orElse(Config.Tuning.DEFAULT);
        Optional<Config.Gateway> gateway = r.optional("gateway").map(this::gateway);
        Optional<Config.UsageApi> usage = r.optional("usage").map(this::usage);
        Optional<Config.PolicyHook> hook = r.optional("policyHook").map(this::policyHook);
        Config.MetricsExport metrics = r.optional("metrics").map(this::metrics).orElse(Config.MetricsExport.NONE);
        Optional<Config.Csi> csi = r.optional("csi").map(n -> section(n, "csi", cr -> {
            Optional<Path> sock = absolute(cr, "csi.socket", "socket");
            if (sock.isEmpty()) {
                problems.add(cr.map(), "csi: missing required key 'socket' (e.g. /var/lib/kubelet/plugins/csi.keywarden.io/csi.sock)");
            }
            Optional<String> nodeId = cr.optionalString("nodeId");
            return sock.map(p -> new Config.Csi(p, nodeId)).orElse(null);
        }));
        Optional<Config.Fleet> fleet = r.optional("fleet").map(this::fleet);
        r.rejectUnknown();
        if (node.isBlank()) {
            problems.add(r.map(), "node must not be empty");
        }
        problems.throwIfAny();
        return new Config(node, policy.orElseThrow(), identity, issuers, delivery, audit, ops, admin, revokeOnShutdown,
                tuning == null ? Config.Tuning.DEFAULT : tuning, new Config.Extensions(gateway, usage, hook,
                metrics == null ? Config.MetricsExport.NONE : metrics, csi, fleet));
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

    private Path path(String text) {
        Path p = Path.of(text);
        return p.isAbsolute() ? p.normalize() : baseDir.resolve(p).normalize();
    }

    private <E extends Enum<E>> Optional<E> choice(MappingReader r, String where, String key, Class<E> type, E dflt) {
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

    private <T> T section(YamlNode n, String where, Function<MappingReader, T> read) {
        return MappingReader.of(n, where, problems).map(r -> {
            T t = read.apply(r);
            r.rejectUnknown();
            return t;
        }).orElse(null);
    }

    private Config.Identity identity(YamlNode n) {
        return section(n, "identity", r -> {
            var provider = choice(r, "identity", "provider", Config.IdentityProvider.class, Config.IdentityProvider.SPIRE);
            String audience = r.optionalString("audience").orElse("vault");
            if (audience.isBlank()) {
                problems.add(r.map(), "identity.audience must not be empty");
            }
            Path socket = r.optional("spire").map(s -> section(s, "identity.spire", sr ->
                    sr.optionalString("adminSocket").map(this::path).orElse(DEFAULT_SPIRE_ADMIN_SOCKET)))
                    .orElse(DEFAULT_SPIRE_ADMIN_SOCKET);
            return new Config.Identity(provider.orElse(null), audience, socket);
        });
    }

    /** The older single-issuer form: one instance named after its provider ({@code vault} or {@code dev}). */
    private IssuerSpec issuer(YamlNode n, String audience) {
        return section(n, "issuer", r -> {
            Optional<YamlNode> providerNode = r.optional("provider");
            Optional<String> provider = providerNode.flatMap(pn -> r.string(pn, "issuer.provider"));
            Optional<YamlNode> vaultNode = r.optional("vault");
            if (provider.isEmpty()) {
                if (problems.isEmpty()) {
                    problems.add(r.map(), "issuer: missing required key 'provider' (vault | dev)");
                }
                return null;
            }
            switch (provider.get()) {
                case "vault" -> {
                    if (vaultNode.isEmpty()) {
                        problems.add(r.map(), "issuer.vault is required when issuer.provider is vault");
                        return null;
                    }
                    Config.Vault v = section(vaultNode.get(), "issuer.vault", vr -> vault(vr, "issuer.vault"));
                    return v == null ? null : new IssuerSpec.Vault("vault", v, audience);
                }
                case "dev" -> {
                    vaultNode.ifPresent(v -> section(v, "issuer.vault", vr -> vault(vr, "issuer.vault")));
                    return new IssuerSpec.Dev("dev", IssuerSpec.Dev.DEFAULT_TTL);
                }
                default -> {
                    problems.add(providerNode.get(), "issuer.provider: '" + provider.get() + "' is not one of vault | dev");
                    return null;
                }
            }
        });
    }

    /** {@code issuers:}: named instances, each with its {@code type} and that type's settings. */
    private void issuers(YamlNode n, String audience, Map<String, IssuerSpec> out) {
        MappingReader.of(n, "issuers", problems).ifPresent(r -> {
            if (r.map().entries().isEmpty()) {
                problems.add(n, "issuers must name at least one issuer instance");
            }
            for (var e : r.map().entries()) {
                r.optional(e.key());
                String where = "issuers." + e.key();
                if (!Names.isValid(e.key())) {
                    problems.add(e.keyLocation(), where + ": '" + e.key() + "' is not a valid instance name: use 1-63"
                            + " of a-z, 0-9, '_' or '-', starting with a letter or digit");
                    continue;
                }
                IssuerSpec spec = section(e.value(), where, ir -> {
                    Optional<String> type = ir.requiredString("type");
                    if (type.isEmpty()) {
                        return null;
                    }
                    return switch (type.get()) {
                        case "vault" -> {
                            String aud = ir.optionalString("audience").orElse(audience);
                            if (aud.isBlank()) {
                                problems.add(ir.map(), where + ".audience must not be empty");
                            }
                            Config.Vault v = vault(ir, where);
                            yield new IssuerSpec.Vault(e.key(), v, aud);
                        }
                        case "dev" -> {
                            Duration ttl = ir.optionalParsed("ttl", Durations::parse).orElse(IssuerSpec.Dev.DEFAULT_TTL);
                            if (ttl.compareTo(Duration.ofSeconds(10)) < 0 || ttl.compareTo(Duration.ofDays(1)) > 0) {
                                problems.add(ir.map(), where + ".ttl must be between 10s and 24h");
                            }
                            yield new IssuerSpec.Dev(e.key(), ttl);
                        }
                        case "openai-federation" -> new IssuerSpec.OpenAiFederation(e.key(),
                                url(ir, where, IssuerSpec.OpenAiFederation.DEFAULT_URL),
                                nonEmpty(ir, where, "identityProviderId", null),
                                nonEmpty(ir, where, "audience", IssuerSpec.OpenAiFederation.DEFAULT_AUDIENCE),
                                timeout(ir, where));
                        case "anthropic-federation" -> new IssuerSpec.AnthropicFederation(e.key(),
                                url(ir, where, IssuerSpec.AnthropicFederation.DEFAULT_URL),
                                nonEmpty(ir, where, "organizationId", null),
                                nonEmpty(ir, where, "audience", IssuerSpec.AnthropicFederation.DEFAULT_AUDIENCE),
                                timeout(ir, where));
                        case "gcp-sts" -> {
                            String aud = nonEmpty(ir, where, "audience", null);
                            if (aud != null && !aud.startsWith("//iam.googleapis.com/")) {
                                problems.add(ir.map(), where + ".audience '" + aud + "' must be the workload identity pool"
                                        + " provider's resource name, //iam.googleapis.com/projects/N/locations/global/"
                                        + "workloadIdentityPools/P/providers/X");
                            }
                            yield new IssuerSpec.GcpSts(e.key(), url(ir, where, IssuerSpec.GcpSts.DEFAULT_URL), aud,
                                    nonEmpty(ir, where, "svidAudience", aud == null ? "" : "https:" + aud),
                                    nonEmpty(ir, where, "scope", IssuerSpec.GcpSts.DEFAULT_SCOPE),
                                    url(ir, where, "impersonateUrl", IssuerSpec.GcpSts.DEFAULT_IMPERSONATE_URL),
                                    timeout(ir, where));
                        }
                        case "azure-entra" -> {
                            Optional<YamlNode> urlNode = ir.required("url");
                            URI tokenUrl = urlNode.flatMap(a -> ir.string(a, where + ".url").flatMap(x -> ir.parsed(
                                    a.location(), where + ".url", x, ConfigLoader::httpUri))).orElse(null);
                            yield new IssuerSpec.AzureEntra(e.key(), tokenUrl,
                                    nonEmpty(ir, where, "scope", IssuerSpec.AzureEntra.DEFAULT_SCOPE),
                                    nonEmpty(ir, where, "audience", IssuerSpec.AzureEntra.DEFAULT_AUDIENCE),
                                    timeout(ir, where));
                        }
                        case "aws-sts" -> {
                            String region = nonEmpty(ir, where, "region", "us-east-1");
                            if (region != null && !region.matches("[a-z]{2}(-gov)?-[a-z]+-\\d")) {
                                problems.add(ir.map(), where + ".region '" + region + "' is not an AWS region");
                            }
                            Duration duration = ir.optionalParsed("duration", Durations::parse).orElse(Duration.ofHours(1));
                            if (duration.toSeconds() < 900 || duration.toSeconds() > 43200) {
                                problems.add(ir.map(), where + ".duration must be between 15m and 12h (STS DurationSeconds)");
                            }
                            String output = ir.optionalString("output").orElse(IssuerSpec.AwsSts.BEDROCK_API_KEY);
                            if (!output.equals(IssuerSpec.AwsSts.BEDROCK_API_KEY)
                                    && !output.equals(IssuerSpec.AwsSts.CREDENTIAL_PROCESS)) {
                                problems.add(ir.map(), where + ".output '" + output + "' is not one of bedrock-api-key |"
                                        + " credential-process");
                            }
                            yield new IssuerSpec.AwsSts(e.key(), url(ir, where, IssuerSpec.AwsSts.DEFAULT_URL), region,
                                    nonEmpty(ir, where, "audience", IssuerSpec.AwsSts.DEFAULT_AUDIENCE), duration,
                                    timeout(ir, where), output);
                        }
                        case "openrouter-federation" -> new IssuerSpec.OpenRouterFederation(e.key(),
                                url(ir, where, IssuerSpec.OpenRouterFederation.DEFAULT_URL),
                                nonEmpty(ir, where, "audience", IssuerSpec.OpenRouterFederation.DEFAULT_AUDIENCE),
                                timeout(ir, where));
                        case "okta-client-credentials" -> {
                            Optional<YamlNode> urlNode = ir.required("url");
                            URI tokenUrl = urlNode.flatMap(a -> ir.string(a, where + ".url").flatMap(x -> ir.parsed(
                                    a.location(), where + ".url", x, ConfigLoader::httpUri))).orElse(null);
                            yield new IssuerSpec.OktaClientCredentials(e.key(), tokenUrl,
                                    ir.optionalString("scope").orElse(""), timeout(ir, where));
                        }
                        case "openrouter-keys" -> {
                            Path keyFile = ir.required("managementKeyFile").flatMap(c -> ir.string(c,
                                    where + ".managementKeyFile").map(this::path)
                                    .filter(f -> readable(c.location(), where + ".managementKeyFile", f))).orElse(null);
                            Duration ttl = ir.optionalParsed("ttl", Durations::parse).orElse(Duration.ofHours(1));
                            if (ttl.compareTo(Duration.ofMinutes(1)) < 0 || ttl.compareTo(Duration.ofDays(30)) > 0) {
                                problems.add(ir.map(), where + ".ttl must be between 1m and 720h");
                            }
                            yield new IssuerSpec.OpenRouterKeys(e.key(), url(ir, where, IssuerSpec.OpenRouterKeys.DEFAULT_URL),
                                    keyFile, ttl, timeout(ir, where));
                        }
                        default -> {
                            problems.add(ir.map(), where + ".type: '" + type.get() + "' is not a known issuer type"
                                    + " (vault | dev | openai-federation | anthropic-federation | gcp-sts | azure-entra |"
                                    + " aws-sts | openrouter-keys | openrouter-federation | okta-client-credentials)");
                            yield null;
                        }
                    };
                });
                if (spec != null) {
                    out.put(e.key(), spec);
                }
            }
            r.rejectUnknown();
        });
    }

    private URI url(MappingReader r, String where, String dflt) {
        return url(r, where, "url", dflt);
    }

    /** An http(s) endpoint ({@code key}), defaulting to the provider's own. */
    private URI url(MappingReader r, String where, String key, String dflt) {
        return r.optional(key).flatMap(a -> r.string(a, where + "." + key)
                .flatMap(s -> r.parsed(a.location(), where + "." + key, s, ConfigLoader::httpUri)))
                .orElse(URI.create(dflt));
    }

    /** A non-empty string; required when {@code dflt} is null. */
    private String nonEmpty(MappingReader r, String where, String key, String dflt) {
        Optional<String> v = dflt == null ? r.requiredString(key) : r.optionalString(key);
        String out = v.orElse(dflt);
        if (out != null && out.isBlank()) {
            problems.add(r.map(), where + "." + key + " must not be empty");
        }
        return out;
    }

    private Duration timeout(MappingReader r, String where) {
        Duration timeout = r.optionalParsed("timeout", Durations::parse).orElse(Duration.ofSeconds(10));
        if (timeout.isZero() || timeout.compareTo(Duration.ofMinutes(5)) > 0) {
            problems.add(r.map(), where + ".timeout must be more than 0 and at most 5m");
        }
        return timeout;
    }

    private Config.Vault vault(MappingReader r, String where) {
        Optional<URI> address = r.required("address").flatMap(a -> r.string(a, where + ".address")
                .flatMap(s -> r.parsed(a.location(), where + ".address", s, ConfigLoader::httpUri)));
        String namespace = r.optionalString("namespace").orElse("");
        String mount = r.optionalString("authMount").orElse("jwt");
        if (mount.isBlank() || mount.startsWith("/") || mount.endsWith("/") || mount.contains("..")) {
            problems.add(r.map(), where + ".authMount '" + mount + "' must be a mount path like jwt or auth-x/jwt");
        }
        Optional<Path> ca = r.optional("caFile").flatMap(c -> r.string(c, where + ".caFile").map(this::path)
                .filter(p -> readable(c.location(), where + ".caFile", p)));
        Duration timeout = r.optionalParsed("timeout", Durations::parse).orElse(Duration.ofSeconds(10));
        if (timeout.isZero() || timeout.compareTo(Duration.ofMinutes(5)) > 0) {
            problems.add(r.map(), where + ".timeout must be more than 0 and at most 5m");
        }
        return new Config.Vault(address.orElse(null), namespace, mount, ca, timeout);
    }

    private boolean readable(Location at, String what, Path p) {
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
            var mode = choice(r, "delivery", "mode", Config.DeliveryMode.class, Config.DeliveryMode.FUSE);
            Path path = absolute(r, "delivery.path", "path").orElse(DEFAULT_MOUNT);
            Duration timeout = r.optionalParsed("requestTimeout", Durations::parse).orElse(DEFAULT_FUSE_REQUEST_TIMEOUT);
            if (timeout.isNegative() || timeout.toSeconds() > 65535) {
                problems.add(n, "delivery.requestTimeout must be between 0s (none) and 65535s");
            }
            return new Config.Delivery(mode.orElse(null), path, timeout);
        });
    }

    private Optional<Path> absolute(MappingReader r, String what, String key) {
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

    private Config.Tuning tuning(YamlNode n) {
        Config.Tuning d = Config.Tuning.DEFAULT;
        return section(n, "tuning", r -> new Config.Tuning(
                count(r, "fuseWorkers", d.fuseWorkers(), 0, 256),
                count(r, "issuerThreads", d.issuerThreads(), 1, 256),
                count(r, "attestThreads", d.attestThreads(), 1, 256),
                within(r, "openTimeout", d.openTimeout(), Duration.ofSeconds(1), Duration.ofMinutes(5)),
                within(r, "readinessInterval", d.readinessInterval(), Duration.ofSeconds(1), Duration.ofMinutes(10)),
                within(r, "policyPollInterval", d.policyPollInterval(), Duration.ofMillis(100), Duration.ofMinutes(10)),
                within(r, "spireTimeout", d.spireTimeout(), Duration.ofMillis(100), Duration.ofMinutes(1))));
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

    /** {@code gateway:} listeners, upstreams per key, a CA for upstream TLS, limits. */
    private Config.Gateway gateway(YamlNode n) {
        return section(n, "gateway", r -> {
            Optional<HostPort> listen = r.optionalParsed("listen", HostPort::parse);
            listen.filter(hp -> !isLoopback(hp.host())).ifPresent(hp -> problems.add(r.map(), "gateway.listen " + hp
                    + " is not a loopback address: the caller is found from the local TCP peer; remote callers need mTLS"));
            Optional<Path> socket = absolute(r, "gateway.socket", "socket");
            Optional<Config.Mtls> mtls = r.optional("mtls").map(m -> section(m, "gateway.mtls", mr -> {
                Optional<HostPort> at = mr.required("listen").flatMap(ln -> mr.string(ln, "gateway.mtls.listen")
                        .flatMap(t -> mr.parsed(ln.location(), "gateway.mtls.listen", t, HostPort::parse)));
                Optional<Path> api = mr.required("workloadApi").flatMap(an -> mr.string(an, "gateway.mtls.workloadApi")
                        .flatMap(t -> mr.parsed(an.location(), "gateway.mtls.workloadApi", t, ConfigLoader::unixAddress)));
                return at.isPresent() && api.isPresent() ? new Config.Mtls(at.get(), api.get()) : null;
            }));
            if (listen.isEmpty() && socket.isEmpty() && mtls.isEmpty()) {
                problems.add(r.map(), "gateway: set listen (loopback HOST:PORT), socket (a Unix socket path), mtls, or"
                        + " several");
            }
            Map<String, Config.Upstream> upstreams = new LinkedHashMap<>();
            r.optional("upstreams").ifPresent(u -> MappingReader.of(u, "gateway.upstreams", problems).ifPresent(ur -> {
                for (var e : ur.map().entries()) {
                    ur.optional(e.key());
                    String where = "gateway.upstreams." + e.key();
                    if (!Names.isValid(e.key())) {
                        problems.add(e.keyLocation(), where + ": not a key name");
                        continue;
                    }
                    Config.Upstream up = e.value() instanceof YamlScalar
                            ? ur.string(e.value(), where).flatMap(t -> ur.parsed(e.value().location(), where, t,
                                    ConfigLoader::httpUri)).map(uri -> new Config.Upstream(uri, Config.UpstreamAuth.BEARER))
                                    .orElse(null)
                            : section(e.value(), where, er -> {
                                Optional<URI> url = er.required("url").flatMap(a -> er.string(a, where + ".url")
                                        .flatMap(t -> er.parsed(a.location(), where + ".url", t, ConfigLoader::httpUri)));
                                Optional<Config.UpstreamAuth> auth = er.optionalString("auth").flatMap(a -> er.parsed(
                                        er.map().location(), where + ".auth", a, ConfigLoader::upstreamAuth));
                                Optional<Long> body = er.optionalParsed("maxBodyBytes", Sizes::parse);
                                body.filter(b -> b < 1024 || b > (1L << 30)).ifPresent(b -> problems.add(er.map(), where
                                        + ".maxBodyBytes must be between 1KiB and 1GiB"));
                                return url.map(x -> new Config.Upstream(x, auth.orElse(Config.UpstreamAuth.BEARER),
                                        body.map(java.util.OptionalLong::of).orElse(java.util.OptionalLong.empty())))
                                        .orElse(null);
                            });
                    if (up != null) {
                        upstreams.put(e.key(), up);
                    }
                }
            }));
            Optional<Path> ca = r.optional("caFile").flatMap(c -> r.string(c, "gateway.caFile").map(this::path)
                    .filter(p -> readable(c.location(), "gateway.caFile", p)));
            long max = r.optionalParsed("maxBodyBytes", Sizes::parse).orElse(Config.Gateway.DEFAULT_MAX_BODY);
            if (max < 1024 || max > (1L << 30)) {
                problems.add(r.map(), "gateway.maxBodyBytes must be between 1KiB and 1GiB");
            }
            Duration timeout = r.optionalParsed("timeout", Durations::parse).orElse(Config.Gateway.DEFAULT_TIMEOUT);
            if (timeout.isZero() || timeout.isNegative() || timeout.compareTo(Duration.ofHours(1)) > 0) {
                problems.add(r.map(), "gateway.timeout must be more than 0 and at most 1h");
            }
            Config.GatewayLimits d = Config.GatewayLimits.DEFAULT;
            int conns = (int) bounded(r, "maxConnections", d.maxConnections(), 1, 100_000);
            int perUid = (int) bounded(r, "maxConnectionsPerUid", d.maxConnectionsPerUid(), 1, 100_000);
            Duration idle = r.optionalParsed("idleTimeout", Durations::parse).orElse(d.idleTimeout());
            if (idle.isZero() || idle.isNegative() || idle.compareTo(Duration.ofHours(1)) > 0) {
                problems.add(r.map(), "gateway.idleTimeout must be more than 0 and at most 1h");
            }
            long buffered = r.optionalParsed("maxBufferedBytes", Sizes::parse).orElse(d.maxBufferedBytes());
            if (buffered < max || buffered > (4L << 30)) {
                problems.add(r.map(), "gateway.maxBufferedBytes must be at least gateway.maxBodyBytes (" + max
                        + ") and at most 4GiB");
            }
            int streams = (int) bounded(r, "maxStreamsPerConnection", d.maxStreamsPerConnection(), 1, 1000);
            long outTokens = bounded(r, "defaultMaxOutputTokens", d.defaultMaxOutputTokens(), 1, 10_000_000);
            return new Config.Gateway(listen, socket, upstreams, ca, max, timeout, mtls, new Config.GatewayLimits(conns,
                    perUid, idle, buffered, streams, outTokens));
        });
    }

    /** {@code fleet:}: Redis, its credentials, the key prefix, and what a node does when Redis is unreachable. */
    private Config.Fleet fleet(YamlNode n) {
        return section(n, "fleet", r -> {
            Optional<Config.RedisTarget> redis = r.required("redis").flatMap(this::redisTarget);
            Optional<String> user = r.optionalString("user");
            Optional<Path> password = r.optional("passwordFile").flatMap(c -> r.string(c, "fleet.passwordFile")
                    .map(this::path).filter(p -> readable(c.location(), "fleet.passwordFile", p)));
            String prefix = r.optionalString("keyPrefix").orElse("kw:");
            if (prefix.contains("{") || prefix.contains("}") || prefix.length() > 64) {
                problems.add(r.map(), "fleet.keyPrefix must hold no braces (they are the hash tags) and at most 64 characters");
            }
            Config.FleetUnavailable on = choice(r, "fleet", "onUnavailable", Config.FleetUnavailable.class,
                    Config.FleetUnavailable.LOCAL).orElse(Config.FleetUnavailable.LOCAL);
            Duration heartbeat = r.optionalParsed("heartbeat", Durations::parse).orElse(Duration.ofSeconds(5));
            Duration timeout = r.optionalParsed("opTimeout", Durations::parse).orElse(Duration.ofMillis(500));
            if (timeout.isZero() || timeout.isNegative() || timeout.compareTo(Duration.ofSeconds(30)) > 0) {
                problems.add(r.map(), "fleet.opTimeout must be more than 0 and at most 30s");
            }
            long reserve = r.optionalLong("reserveDefaultTokens").orElse(4096L);
            if (reserve < 1) {
                problems.add(r.map(), "fleet.reserveDefaultTokens must be at least 1");
            }
            return redis.map(u -> new Config.Fleet(u, user, password, prefix, on, heartbeat, reserve, timeout)).orElse(null);
        });
    }

    /**
     * {@code fleet.redis}: a URL (one server), {@code {sentinel: [URL, …], master: NAME}} or
     * {@code {cluster: [URL, …]}} (seed nodes).
     */
    private Optional<Config.RedisTarget> redisTarget(YamlNode x) {
        if (!(x instanceof YamlMap)) {
            return standaloneTarget(x);
        }
        return Optional.ofNullable(section(x, "fleet.redis", r -> {
            Optional<YamlNode> sentinel = r.optional("sentinel");
            Optional<YamlNode> cluster = r.optional("cluster");
            Optional<String> master = r.optionalString("master");
            if (sentinel.isPresent() == cluster.isPresent()) {
                problems.add(r.map(), "fleet.redis must name either 'sentinel' (with 'master') or 'cluster', not "
                        + (sentinel.isPresent() ? "both" : "neither"));
                return null;
            }
            if (cluster.isPresent()) {
                if (master.isPresent()) {
                    problems.add(r.map(), "fleet.redis.master belongs with 'sentinel', not 'cluster'");
                }
                List<URI> seeds = redisList(cluster.get(), "fleet.redis.cluster");
                return seeds.isEmpty() ? null : new Config.RedisTarget(Config.RedisKind.CLUSTER, seeds, Optional.empty());
            }
            if (master.isEmpty() || master.get().isBlank()) {
                problems.add(r.map(), "fleet.redis.sentinel needs 'master': the name the sentinels monitor");
                return null;
            }
            List<URI> sentinels = redisList(sentinel.get(), "fleet.redis.sentinel");
            return sentinels.isEmpty() ? null : new Config.RedisTarget(Config.RedisKind.SENTINEL, sentinels, master);
        }));
    }

    private Optional<Config.RedisTarget> standaloneTarget(YamlNode x) {
        if (!(x instanceof YamlScalar sc)) {
            problems.add(x, "fleet.redis must be a redis:// URL, {sentinel: [...], master: NAME} or {cluster: [...]}; found "
                    + x.describe());
            return Optional.empty();
        }
        try {
            return Optional.of(Config.RedisTarget.standalone(redisUri(sc.text())));
        } catch (IllegalArgumentException e) {
            problems.add(x, "fleet.redis: " + e.getMessage());
            return Optional.empty();
        }
    }

    /** A non-empty list of redis:// URLs at {@code where}; empty (with a problem) when it is not one. */
    private List<URI> redisList(YamlNode n, String where) {
        if (!(n instanceof YamlList l) || l.items().isEmpty()) {
            problems.add(n, where + " must be a non-empty list of redis:// URLs; found " + n.describe());
            return List.of();
        }
        List<URI> out = new ArrayList<>();
        for (YamlNode item : l.items()) {
            if (!(item instanceof YamlScalar sc)) {
                problems.add(item, where + ": each entry must be a redis:// URL; found " + item.describe());
                continue;
            }
            try {
                out.add(redisUri(sc.text()));
            } catch (IllegalArgumentException e) {
                problems.add(item, where + ": " + e.getMessage());
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

    /** An optional whole number of {@code gateway.<name>} within [min, max], else {@code dflt}. */
    private long bounded(MappingReader r, String name, long dflt, long min, long max) {
        long v = r.optionalLong(name).orElse(dflt);
        if (v < min || v > max) {
            problems.add(r.map(), "gateway." + name + " must be between " + min + " and " + max);
            return dflt;
        }
        return v;
    }

    /** {@code unix:///abs/path} → the path. */
    static Path unixAddress(String s) {
        if (!s.startsWith("unix:///")) {
            throw new IllegalArgumentException("'" + s + "' must be unix:///absolute/path");
        }
        return Path.of(s.substring("unix://".length())).normalize();
    }

    static Config.UpstreamAuth upstreamAuth(String s) {
        return switch (s) {
            case "bearer" -> Config.UpstreamAuth.BEARER;
            case "x-api-key" -> Config.UpstreamAuth.X_API_KEY;
            case "api-key" -> Config.UpstreamAuth.API_KEY;
            default -> throw new IllegalArgumentException("'" + s + "' is not one of bearer | x-api-key | api-key");
        };
    }

    private static boolean isLoopback(String host) {
        return host.equals("localhost") || host.startsWith("127.") || host.equals("::1");
    }

    /** {@code usage: {openai: {url, adminKeyFile, interval}}}. */
    private Config.UsageApi usage(YamlNode n) {
        return section(n, "usage", r -> r.required("openai").map(o -> section(o, "usage.openai", or -> {
            URI url = url(or, "usage.openai", "https://api.openai.com/v1");
            Optional<Path> keyFile = or.required("adminKeyFile").flatMap(k -> or.string(k, "usage.openai.adminKeyFile")
                    .map(this::path).filter(p -> readable(k.location(), "usage.openai.adminKeyFile", p)));
            Duration interval = within(or, "interval", Duration.ofSeconds(60), Duration.ofSeconds(1), Duration.ofHours(1));
            return keyFile.map(k -> new Config.UsageApi(url, k, interval)).orElse(null);
        })).orElse(null));
    }

    /** {@code policyHook: {opa: {url, timeout, failClosed}}}. */
    private Config.PolicyHook policyHook(YamlNode n) {
        return section(n, "policyHook", r -> r.required("opa").map(o -> section(o, "policyHook.opa", or -> {
            Optional<URI> url = or.required("url").flatMap(a -> or.string(a, "policyHook.opa.url")
                    .flatMap(t -> or.parsed(a.location(), "policyHook.opa.url", t, ConfigLoader::httpUri)));
            Duration timeout = within(or, "timeout", Duration.ofMillis(200), Duration.ofMillis(1), Duration.ofSeconds(30));
            boolean failClosed = or.optionalBoolean("failClosed").orElse(true);
            return url.map(u -> new Config.PolicyHook(u, timeout, failClosed)).orElse(null);
        })).orElse(null));
    }

    /** {@code metrics: {statsd: {host, port, flavor}, otlp: {url}, step}}. */
    private Config.MetricsExport metrics(YamlNode n) {
        return section(n, "metrics", r -> {
            Optional<Config.StatsD> statsd = r.optional("statsd").map(s -> section(s, "metrics.statsd", sr -> {
                String host = nonEmpty(sr, "metrics.statsd", "host", "127.0.0.1");
                int port = count(sr, "port", 8125, 1, 65535);
                String flavor = sr.optionalString("flavor").orElse("datadog");
                if (!java.util.Set.of("datadog", "etsy", "telegraf").contains(flavor)) {
                    problems.add(sr.map(), "metrics.statsd.flavor '" + flavor + "' is not one of datadog | etsy | telegraf");
                }
                return new Config.StatsD(host, port, flavor);
            }));
            Optional<URI> otlp = r.optional("otlp").map(o -> section(o, "metrics.otlp", or -> url(or, "metrics.otlp",
                    "http://127.0.0.1:4318/v1/metrics")));
            Duration step = within(r, "step", Duration.ofSeconds(10), Duration.ofSeconds(1), Duration.ofMinutes(5));
            return new Config.MetricsExport(statsd, otlp, step);
        });
    }
}
