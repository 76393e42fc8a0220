package io.keywarden.issuer.federation.openai;

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
 * {@code type: openai-federation}: OpenAI workload identity federation (RFC 8693 token exchange,
 * JSON): the SVID for {@code audience} and the key's {@code serviceAccountId} give a Bearer access
 * token. Not revocable: served until it expires.
 */
public final class OpenAiFederationType implements IssuerType<OpenAiFederationType.Spec> {

    /** The settings of one instance. */
    public record Spec(String name, URI url, String identityProviderId, String audience, Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_URL = "https://auth.openai.com/oauth/token";
        public static final String DEFAULT_AUDIENCE = "https://api.openai.com/v1";

        @Override
        public String type() {
            return "openai-federation";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return IssuerSpec.params(key, name, type(), List.of("serviceAccountId"), List.of());
        }
    }

    @Override
    public String type() {
        return "openai-federation";
    }

    @Override
    public Class<Spec> specClass() {
        return Spec.class;
    }

    @Override
    public Spec parse(IssuerBlock b) {
        return new Spec(b.name(), b.url("url", Spec.DEFAULT_URL), b.nonEmpty("identityProviderId", null),
                b.nonEmpty("audience", Spec.DEFAULT_AUDIENCE), b.timeout());
    }

    @Override
    public Issuer create(Spec spec, IssuerContext context) throws IssuerException {
        return new OpenAiFederationIssuer(spec, context.identity(), context.clock());
    }

    @Override
    public Optional<URI> defaultUpstream() {
        return Optional.of(URI.create("https://api.openai.com"));
    }
}
