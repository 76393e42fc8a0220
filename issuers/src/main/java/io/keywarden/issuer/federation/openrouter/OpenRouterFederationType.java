package io.keywarden.issuer.federation.openrouter;

import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerBlock;
import io.keywarden.issuer.IssuerContext;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerType;
import io.keywarden.policy.KeySpec;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * {@code type: openrouter-federation}: OpenRouter federation (enterprise plans): token exchange,
 * form-encoded, for the key's {@code federationPolicyId}; tokens live at most 15 minutes. Not
 * revocable.
 */
public final class OpenRouterFederationType implements IssuerType<OpenRouterFederationType.Spec> {

    /** The settings of one instance. */
    public record Spec(String name, URI url, String audience, Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_URL = "https://openrouter.ai/api/v1/oauth/token";
        public static final String DEFAULT_AUDIENCE = "https://openrouter.ai";

        @Override
        public String type() {
            return "openrouter-federation";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return IssuerSpec.params(key, name, type(), List.of("federationPolicyId"), List.of());
        }
    }

    @Override
    public String type() {
        return "openrouter-federation";
    }

    @Override
    public Class<Spec> specClass() {
        return Spec.class;
    }

    @Override
    public Spec parse(IssuerBlock b) {
        return new Spec(b.name(), b.url("url", Spec.DEFAULT_URL), b.nonEmpty("audience", Spec.DEFAULT_AUDIENCE),
                b.timeout());
    }

    @Override
    public Issuer create(Spec spec, IssuerContext context) throws IssuerException {
        return new OpenRouterFederationIssuer(spec, context.identity(), context.clock());
    }

    @Override
    public Optional<URI> defaultUpstream() {
        return Optional.of(URI.create("https://openrouter.ai/api"));
    }
}
