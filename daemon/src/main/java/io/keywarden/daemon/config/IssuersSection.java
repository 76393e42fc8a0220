package io.keywarden.daemon.config;

import io.keywarden.policy.Durations;
import io.keywarden.policy.Names;
import io.keywarden.policy.yaml.MappingReader;
import io.keywarden.policy.yaml.YamlNode;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The config's {@code issuers:} (and the older single {@code issuer:}): each instance's type and
 * its settings, read with the loader's problems and helpers.
 */
final class IssuersSection extends ConfigSection {
    IssuersSection(ConfigLoader loader) {
        super(loader);
    }

    /** The older single-issuer form: one instance named after its provider ({@code vault} or {@code dev}). */
    IssuerSpec issuer(YamlNode n, String audience) {
        return loader.section(n, "issuer", r -> {
            Optional<YamlNode> providerNode = r.optional("provider");
            Optional<String> provider = providerNode.flatMap(pn -> r.string(pn, "issuer.provider"));
            Optional<YamlNode> vaultNode = r.optional("vault");
            if (provider.isEmpty()) {
                if (loader.problems.isEmpty()) {
                    loader.problems.add(r.map(), "issuer: missing required key 'provider' (vault | dev)");
                }
                return null;
            }
            switch (provider.get()) {
                case "vault" -> {
                    if (vaultNode.isEmpty()) {
                        loader.problems.add(r.map(), "issuer.vault is required when issuer.provider is vault");
                        return null;
                    }
                    Config.Vault v = loader.section(vaultNode.get(), "issuer.vault", vr -> vault(vr, "issuer.vault"));
                    return v == null ? null : new IssuerSpec.Vault("vault", v, audience);
                }
                case "dev" -> {
                    vaultNode.ifPresent(v -> loader.section(v, "issuer.vault", vr -> vault(vr, "issuer.vault")));
                    return new IssuerSpec.Dev("dev", IssuerSpec.Dev.DEFAULT_TTL);
                }
                default -> {
                    loader.problems.add(providerNode.get(), "issuer.provider: '" + provider.get() + "' is not one of vault | dev");
                    return null;
                }
            }
        });
    }

    /** {@code issuers:}: named instances, each with its {@code type} and that type's settings. */
    void issuers(YamlNode n, String audience, Map<String, IssuerSpec> out) {
        MappingReader.of(n, "issuers", loader.problems).ifPresent(r -> {
            if (r.map().entries().isEmpty()) {
                loader.problems.add(n, "issuers must name at least one issuer instance");
            }
            for (var e : r.map().entries()) {
                r.optional(e.key());
                String where = "issuers." + e.key();
                if (!Names.isValid(e.key())) {
                    loader.problems.add(e.keyLocation(), where + ": '" + e.key() + "' is not a valid instance name: use 1-63"
                            + " of a-z, 0-9, '_' or '-', starting with a letter or digit");
                    continue;
                }
                IssuerSpec spec = loader.section(e.value(), where, ir -> {
                    Optional<String> type = ir.requiredString("type");
                    if (type.isEmpty()) {
                        return null;
                    }
                    return switch (type.get()) {
                        case "vault" -> {
                            String aud = ir.optionalString("audience").orElse(audience);
                            if (aud.isBlank()) {
                                loader.problems.add(ir.map(), where + ".audience must not be empty");
                            }
                            Config.Vault v = vault(ir, where);
                            yield new IssuerSpec.Vault(e.key(), v, aud);
                        }
                        case "dev" -> {
                            Duration ttl = ir.optionalParsed("ttl", Durations::parse).orElse(IssuerSpec.Dev.DEFAULT_TTL);
                            if (ttl.compareTo(Duration.ofSeconds(10)) < 0 || ttl.compareTo(Duration.ofDays(1)) > 0) {
                                loader.problems.add(ir.map(), where + ".ttl must be between 10s and 24h");
                            }
                            yield new IssuerSpec.Dev(e.key(), ttl);
                        }
                        case "openai-federation" -> new IssuerSpec.OpenAiFederation(e.key(),
                                loader.url(ir, where, IssuerSpec.OpenAiFederation.DEFAULT_URL),
                                loader.nonEmpty(ir, where, "identityProviderId", null),
                                loader.nonEmpty(ir, where, "audience", IssuerSpec.OpenAiFederation.DEFAULT_AUDIENCE),
                                loader.timeout(ir, where));
                        case "anthropic-federation" -> new IssuerSpec.AnthropicFederation(e.key(),
                                loader.url(ir, where, IssuerSpec.AnthropicFederation.DEFAULT_URL),
                                loader.nonEmpty(ir, where, "organizationId", null),
                                loader.nonEmpty(ir, where, "audience", IssuerSpec.AnthropicFederation.DEFAULT_AUDIENCE),
                                loader.timeout(ir, where));
                        case "gcp-sts" -> {
                            String aud = loader.nonEmpty(ir, where, "audience", null);
                            if (aud != null && !aud.startsWith("//iam.googleapis.com/")) {
                                loader.problems.add(ir.map(), where + ".audience '" + aud + "' must be the workload identity pool"
                                        + " provider's resource name, //iam.googleapis.com/projects/N/locations/global/"
                                        + "workloadIdentityPools/P/providers/X");
                            }
                            yield new IssuerSpec.GcpSts(e.key(), loader.url(ir, where, IssuerSpec.GcpSts.DEFAULT_URL), aud,
                                    loader.nonEmpty(ir, where, "svidAudience", aud == null ? "" : "https:" + aud),
                                    loader.nonEmpty(ir, where, "scope", IssuerSpec.GcpSts.DEFAULT_SCOPE),
                                    loader.url(ir, where, "impersonateUrl", IssuerSpec.GcpSts.DEFAULT_IMPERSONATE_URL),
                                    loader.timeout(ir, where));
                        }
                        case "azure-entra" -> {
                            URI tokenUrl = requiredUrl(ir, where);
                            yield new IssuerSpec.AzureEntra(e.key(), tokenUrl,
                                    loader.nonEmpty(ir, where, "scope", IssuerSpec.AzureEntra.DEFAULT_SCOPE),
                                    loader.nonEmpty(ir, where, "audience", IssuerSpec.AzureEntra.DEFAULT_AUDIENCE),
                                    loader.timeout(ir, where));
                        }
                        case "aws-sts" -> {
                            String region = loader.nonEmpty(ir, where, "region", "us-east-1");
                            if (region != null && !region.matches("[a-z]{2}(-gov)?-[a-z]+-\\d")) {
                                loader.problems.add(ir.map(), where + ".region '" + region + "' is not an AWS region");
                            }
                            Duration duration = ir.optionalParsed("duration", Durations::parse).orElse(Duration.ofHours(1));
                            if (duration.toSeconds() < 900 || duration.toSeconds() > 43200) {
                                loader.problems.add(ir.map(), where + ".duration must be between 15m and 12h (STS DurationSeconds)");
                            }
                            String output = ir.optionalString("output").orElse(IssuerSpec.AwsSts.BEDROCK_API_KEY);
                            if (!output.equals(IssuerSpec.AwsSts.BEDROCK_API_KEY)
                                    && !output.equals(IssuerSpec.AwsSts.CREDENTIAL_PROCESS)) {
                                loader.problems.add(ir.map(), where + ".output '" + output + "' is not one of bedrock-api-key |"
                                        + " credential-process");
                            }
                            yield new IssuerSpec.AwsSts(e.key(), loader.url(ir, where, IssuerSpec.AwsSts.DEFAULT_URL), region,
                                    loader.nonEmpty(ir, where, "audience", IssuerSpec.AwsSts.DEFAULT_AUDIENCE), duration,
                                    loader.timeout(ir, where), output);
                        }
                        case "openrouter-federation" -> new IssuerSpec.OpenRouterFederation(e.key(),
                                loader.url(ir, where, IssuerSpec.OpenRouterFederation.DEFAULT_URL),
                                loader.nonEmpty(ir, where, "audience", IssuerSpec.OpenRouterFederation.DEFAULT_AUDIENCE),
                                loader.timeout(ir, where));
                        case "okta-client-credentials" -> {
                            URI tokenUrl = requiredUrl(ir, where);
                            yield new IssuerSpec.OktaClientCredentials(e.key(), tokenUrl,
                                    ir.optionalString("scope").orElse(""), loader.timeout(ir, where),
                                    signingKeyFiles(ir, where));
                        }
                        case "openrouter-keys" -> {
                            Path keyFile = ir.required("managementKeyFile").flatMap(c -> ir.string(c,
                                    where + ".managementKeyFile").map(loader::path)
                                    .filter(f -> loader.readable(c.location(), where + ".managementKeyFile", f))).orElse(null);
                            Duration ttl = ir.optionalParsed("ttl", Durations::parse).orElse(Duration.ofHours(1));
                            if (ttl.compareTo(Duration.ofMinutes(1)) < 0 || ttl.compareTo(Duration.ofDays(30)) > 0) {
                                loader.problems.add(ir.map(), where + ".ttl must be between 1m and 720h");
                            }
                            yield new IssuerSpec.OpenRouterKeys(e.key(), loader.url(ir, where, IssuerSpec.OpenRouterKeys.DEFAULT_URL),
                                    keyFile, ttl, loader.timeout(ir, where));
                        }
                        default -> {
                            loader.problems.add(ir.map(), where + ".type: '" + type.get() + "' is not a known issuer type"
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

    private Config.Vault vault(MappingReader r, String where) {
        Optional<URI> address = r.required("address").flatMap(a -> r.string(a, where + ".address")
                .flatMap(s -> r.parsed(a.location(), where + ".address", s, ConfigLoader::httpUri)));
        String namespace = r.optionalString("namespace").orElse("");
        String mount = r.optionalString("authMount").orElse("jwt");
        if (mount.isBlank() || mount.startsWith("/") || mount.endsWith("/") || mount.contains("..")) {
            loader.problems.add(r.map(), where + ".authMount '" + mount + "' must be a mount path like jwt or auth-x/jwt");
        }
        Optional<Path> ca = r.optional("caFile").flatMap(c -> r.string(c, where + ".caFile").map(loader::path)
                .filter(p -> loader.readable(c.location(), where + ".caFile", p)));
        Duration timeout = r.optionalParsed("timeout", Durations::parse).orElse(Duration.ofSeconds(10));
        if (timeout.isZero() || timeout.compareTo(Duration.ofMinutes(5)) > 0) {
            loader.problems.add(r.map(), where + ".timeout must be more than 0 and at most 5m");
        }
        return new Config.Vault(address.orElse(null), namespace, mount, ca, timeout);
    }

    /** The instance's required {@code url} (http or https), or null with a located problem. */
    private static URI requiredUrl(MappingReader ir, String where) {
        return ir.required("url").flatMap(a -> ir.string(a, where + ".url").flatMap(x -> ir.parsed(a.location(),
                where + ".url", x, ConfigLoader::httpUri))).orElse(null);
    }

    /**
     * {@code signingKeyFile}: one file or a list (the first signs, all are published: a rotation).
     * Required: one Okta app has one JWKS, so every node and every restart must sign with the same key.
     */
    private List<Path> signingKeyFiles(MappingReader ir, String where) {
        String what = where + ".signingKeyFile";
        Optional<YamlNode> node = ir.optional("signingKeyFile");
        if (node.isEmpty()) {
            loader.problems.add(ir.map(), what + " is required: the key every node signs its client assertions with"
                    + " (keywarden jwks --generate FILE makes one; keywarden jwks --key FILE prints the JWKS to give Okta)");
            return List.of();
        }
        List<YamlNode> items = node.get() instanceof io.keywarden.policy.yaml.YamlList l ? l.items() : List.of(node.get());
        if (items.isEmpty() || items.size() > 4) {
            loader.problems.add(node.get().location(), what + " lists " + items.size() + " files: one to four (the first"
                    + " signs; the others are published for a rotation)");
        }
        List<Path> out = new java.util.ArrayList<>();
        for (YamlNode n : items) {
            ir.string(n, what).map(loader::path).filter(f -> loader.readable(n.location(), what, f)).ifPresent(out::add);
        }
        return out;
    }
}
