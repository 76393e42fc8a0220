package io.keywarden.daemon.config;

import io.keywarden.policy.KeySpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One named issuer instance of the config's {@code issuers:} (or the old single {@code issuer:}
 * block, which becomes one instance named after its provider). A sealed type per issuer type:
 * each knows what a key must say to use it ({@link #keyProblems}) and what its credentials can do
 * ({@link #capabilities}).
 */
public sealed interface IssuerSpec permits IssuerSpec.Vault, IssuerSpec.Dev {

    /** The instance name keys refer to ({@code keys.<k>.issuer}). */
    String name();

    /** The type as written in the config: {@code vault}, {@code dev}. */
    String type();

    Capabilities capabilities();

    /** What is wrong with {@code key} for this type, as messages prefixed with {@code keys.<k>}. */
    List<String> keyProblems(KeySpec key);

    /**
     * What an issuer type's credentials can do: revoked early, renewed in place; and the JWT-SVID
     * audience it logs in with (empty: it needs no workload identity).
     */
    record Capabilities(boolean revocable, boolean renewable, Optional<String> audience) {
    }

    /** Vault/OpenBao's OpenAI engine: JWT login with the workload's SVID, a dynamic key per lease. */
    record Vault(String name, Config.Vault connection, String audience) implements IssuerSpec {
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

    /**
     * The dev issuer: {@code sk-dev-} keys with a fixed TTL, nothing external. It stands in for any
     * type under {@code keywarden dev}, so it accepts (and ignores) every key's parameters.
     */
    record Dev(String name, Duration ttl) implements IssuerSpec {
        public static final Duration DEFAULT_TTL = Duration.ofMinutes(5);

        @Override
        public String type() {
            return "dev";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(true, false, Optional.empty());
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return List.of();
        }
    }
}
