package io.keywarden.issuer.federation.okta;

import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerBlock;
import io.keywarden.issuer.IssuerContext;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerType;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.yaml.YamlNode;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code type: okta-client-credentials}: Okta client credentials for internal gateways that accept
 * Okta tokens. One Okta service app per workload (the key's {@code clientId}) authenticating with
 * {@code private_key_jwt} signed with the key of {@code signingKeyFile} (the first signs; all are
 * published in the node's client JWKS and by {@code keywarden jwks}). Not revocable.
 */
public final class OktaClientCredentialsType implements IssuerType<OktaClientCredentialsType.Spec> {

    /** The settings of one instance. */
    public record Spec(String name, URI url, String scope, Duration timeout, List<Path> signingKeyFiles)
            implements IssuerSpec {
        @Override
        public String type() {
            return "okta-client-credentials";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.empty());
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return IssuerSpec.params(key, name, type(), List.of("clientId"), List.of());
        }
    }

    @Override
    public String type() {
        return "okta-client-credentials";
    }

    @Override
    public Class<Spec> specClass() {
        return Spec.class;
    }

    @Override
    public Spec parse(IssuerBlock b) {
        URI tokenUrl = b.requiredUrl("url").orElse(null);
        return new Spec(b.name(), tokenUrl, b.reader().optionalString("scope").orElse(""), b.timeout(),
                signingKeyFiles(b));
    }

    /**
     * {@code signingKeyFile}: one file or a list (the first signs, all are published: a rotation).
     * Required: one Okta app has one JWKS, so every node and every restart must sign with the same key.
     */
    private static List<Path> signingKeyFiles(IssuerBlock b) {
        String what = b.where() + ".signingKeyFile";
        Optional<YamlNode> node = b.reader().optional("signingKeyFile");
        if (node.isEmpty()) {
            b.problem(what + " is required: the key every node signs its client assertions with"
                    + " (keywarden jwks --generate FILE makes one; keywarden jwks --key FILE prints the JWKS to give Okta)");
            return List.of();
        }
        List<YamlNode> items = node.get() instanceof io.keywarden.policy.yaml.YamlList l ? l.items() : List.of(node.get());
        if (items.isEmpty() || items.size() > 4) {
            b.problem(node.get().location(), what + " lists " + items.size() + " files: one to four (the first"
                    + " signs; the others are published for a rotation)");
        }
        List<Path> out = new ArrayList<>();
        for (YamlNode n : items) {
            b.reader().string(n, what).map(b::path).filter(f -> b.readable(n.location(), what, f)).ifPresent(out::add);
        }
        return out;
    }

    @Override
    public Issuer create(Spec spec, IssuerContext context) throws IssuerException {
        ClientKeys keys;
        try {
            keys = ClientKeys.load(spec.signingKeyFiles(), context.clock());
        } catch (java.io.IOException e) {
            throw new IssuerException("issuers." + spec.name() + ".signingKeyFile: " + e.getMessage(),
                    IssuerException.Kind.CONFIG, e);
        }
        return new OktaClientCredentialsIssuer(spec, keys, context.clock());
    }
}
