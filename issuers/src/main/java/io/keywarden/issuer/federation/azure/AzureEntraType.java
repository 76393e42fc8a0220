package io.keywarden.issuer.federation.azure;

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
 * {@code type: azure-entra}: Microsoft Entra (Azure OpenAI) client credentials with the SVID as
 * {@code client_assertion} (audience {@code api://AzureADTokenExchange}, RS256 only), for the app
 * registration of the key's {@code clientId}. Not revocable.
 */
public final class AzureEntraType implements IssuerType<AzureEntraType.Spec> {

    /** The settings of one instance. */
    public record Spec(String name, URI url, String scope, String audience, Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_SCOPE = "https://cognitiveservices.azure.com/.default";
        public static final String DEFAULT_AUDIENCE = "api://AzureADTokenExchange";

        @Override
        public String type() {
            return "azure-entra";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return IssuerSpec.params(key, name, type(), List.of("clientId"), List.of());
        }
    }

    @Override
    public String type() {
        return "azure-entra";
    }

    @Override
    public Class<Spec> specClass() {
        return Spec.class;
    }

    @Override
    public Spec parse(IssuerBlock b) {
        URI tokenUrl = b.requiredUrl("url").orElse(null);
        return new Spec(b.name(), tokenUrl, b.nonEmpty("scope", Spec.DEFAULT_SCOPE),
                b.nonEmpty("audience", Spec.DEFAULT_AUDIENCE), b.timeout());
    }

    @Override
    public Issuer create(Spec spec, IssuerContext context) throws IssuerException {
        // Entra verifies RS256 only: the dev identity provider signs this audience with RSA.
        if (context.identity() instanceof io.keywarden.attestation.dev.DevIdentityProvider dev) {
            dev.signer().useRs256For(spec.audience());
        }
        return new AzureEntraIssuer(spec, context.identity(), context.clock());
    }
}
