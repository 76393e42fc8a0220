package io.keywarden.issuer.vault;

import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerBlock;
import io.keywarden.issuer.IssuerContext;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerType;
import io.keywarden.policy.KeySpec;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * {@code type: vault}: Vault/OpenBao's OpenAI engine, JWT login with the workload's SVID (for
 * {@code audience}, by default {@code identity.audience}), a dynamic key per lease.
 */
public final class VaultType implements IssuerType<VaultType.Spec> {

    public record Spec(String name, VaultConnection connection, String audience) implements IssuerSpec {
        @Override
        public String type() {
            return "vault";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(true, true, Optional.of(audience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            List<String> out = new ArrayList<>();
            if (key.vault().isEmpty()) {
                out.add("keys." + key.name() + ": 'vault' is required for a key of issuer '" + name
                        + "' (type vault)");
            }
            if (!key.params().isEmpty()) {
                out.add("keys." + key.name() + ".params: a key of issuer '" + name + "' (type vault) takes its"
                        + " parameters in 'vault:', not 'params:'");
            }
            return out;
        }
    }

    @Override
    public String type() {
        return "vault";
    }

    @Override
    public Class<Spec> specClass() {
        return Spec.class;
    }

    @Override
    public Spec parse(IssuerBlock b) {
        String aud = b.reader().optionalString("audience").orElse(b.defaultAudience());
        if (aud.isBlank()) {
            b.problem(b.where() + ".audience must not be empty");
        }
        return new Spec(b.name(), connection(b), aud);
    }

    /** The connection settings of a block: also the older single-issuer form's {@code issuer.vault}. */
    public static VaultConnection connection(IssuerBlock b) {
        URI address = b.requiredUrl("address").orElse(null);
        String namespace = b.reader().optionalString("namespace").orElse("");
        String mount = b.reader().optionalString("authMount").orElse("jwt");
        if (mount.isBlank() || mount.startsWith("/") || mount.endsWith("/") || mount.contains("..")) {
            b.problem(b.where() + ".authMount '" + mount + "' must be a mount path like jwt or auth-x/jwt");
        }
        return new VaultConnection(address, namespace, mount, b.file("caFile", false), b.timeout());
    }

    @Override
    public Issuer create(Spec spec, IssuerContext context) throws IssuerException {
        return new VaultIssuer(spec, context.identity(), context.clock());
    }

    /** The OpenAI engine's keys are OpenAI keys. */
    @Override
    public Optional<URI> defaultUpstream() {
        return Optional.of(URI.create("https://api.openai.com"));
    }
}
