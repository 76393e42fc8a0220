package io.keywarden.issuer.federation.anthropic;

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
 * {@code type: anthropic-federation}: Anthropic workload identity federation (RFC 7523
 * jwt-bearer, JSON, two beta headers): the SVID and the key's {@code federationRuleId} and
 * {@code serviceAccountId} (and {@code workspaceId} when the rule spans several) give an
 * {@code sk-ant-oat01-} token. Not revocable.
 */
public final class AnthropicFederationType implements IssuerType<AnthropicFederationType.Spec> {

    /** The settings of one instance. */
    public record Spec(String name, URI url, String organizationId, String audience, Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_URL = "https://api.anthropic.com/v1/oauth/token";
        public static final String DEFAULT_AUDIENCE = "https://api.anthropic.com";

        @Override
        public String type() {
            return "anthropic-federation";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return IssuerSpec.params(key, name, type(), List.of("federationRuleId", "serviceAccountId"), List.of("workspaceId"));
        }
    }

    @Override
    public String type() {
        return "anthropic-federation";
    }

    @Override
    public Class<Spec> specClass() {
        return Spec.class;
    }

    @Override
    public Spec parse(IssuerBlock b) {
        return new Spec(b.name(), b.url("url", Spec.DEFAULT_URL), b.nonEmpty("organizationId", null),
                b.nonEmpty("audience", Spec.DEFAULT_AUDIENCE), b.timeout());
    }

    @Override
    public Issuer create(Spec spec, IssuerContext context) throws IssuerException {
        return new AnthropicFederationIssuer(spec, context.identity(), context.clock());
    }

    @Override
    public Optional<URI> defaultUpstream() {
        return Optional.of(URI.create("https://api.anthropic.com"));
    }
}
