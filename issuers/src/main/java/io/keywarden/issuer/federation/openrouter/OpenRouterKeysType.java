package io.keywarden.issuer.federation.openrouter;

import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerBlock;
import io.keywarden.issuer.IssuerContext;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerType;
import io.keywarden.policy.Durations;
import io.keywarden.policy.KeySpec;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * {@code type: openrouter-keys}: OpenRouter provisioned keys. A key per lease through the
 * management API (its key read from {@code managementKeyFile}), with a spend {@code limit} (USD),
 * {@code limitReset} and an {@code expires_at} of {@code ttl}; deleted on revoke. Revocable; needs
 * no workload identity at the provider.
 */
public final class OpenRouterKeysType implements IssuerType<OpenRouterKeysType.Spec> {

    /** The settings of one instance. */
    public record Spec(String name, URI url, Path managementKeyFile, Duration ttl, Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_URL = "https://openrouter.ai/api/v1";

        @Override
        public String type() {
            return "openrouter-keys";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(true, false, Optional.empty());
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            List<String> out = IssuerSpec.params(key, name, type(), List.of(), List.of("limit", "limitReset"));
            String limit = key.params().get("limit");
            if (limit != null && !limit.matches("\\d{1,9}(\\.\\d{1,2})?")) {
                out.add("keys." + key.name() + ".params.limit '" + limit + "' must be an amount in USD, e.g. 5 or 2.50");
            }
            String reset = key.params().get("limitReset");
            if (reset != null && !List.of("daily", "weekly", "monthly").contains(reset)) {
                out.add("keys." + key.name() + ".params.limitReset '" + reset + "' must be daily, weekly or monthly");
            }
            return out;
        }
    }

    @Override
    public String type() {
        return "openrouter-keys";
    }

    @Override
    public Class<Spec> specClass() {
        return Spec.class;
    }

    @Override
    public Spec parse(IssuerBlock b) {
        Path keyFile = b.file("managementKeyFile", true).orElse(null);
        Duration ttl = b.reader().optionalParsed("ttl", Durations::parse).orElse(Duration.ofHours(1));
        if (ttl.compareTo(Duration.ofMinutes(1)) < 0 || ttl.compareTo(Duration.ofDays(30)) > 0) {
            b.problem(b.where() + ".ttl must be between 1m and 720h");
        }
        return new Spec(b.name(), b.url("url", Spec.DEFAULT_URL), keyFile, ttl, b.timeout());
    }

    @Override
    public Issuer create(Spec spec, IssuerContext context) throws IssuerException {
        return new OpenRouterKeysIssuer(spec, context.clock());
    }

    @Override
    public Optional<URI> defaultUpstream() {
        return Optional.of(URI.create("https://openrouter.ai/api"));
    }
}
