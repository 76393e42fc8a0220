package io.keywarden.issuer;

import io.keywarden.policy.KeySpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One named issuer instance of the config's {@code issuers:}, as its {@link IssuerType} read it:
 * each type has its own record (in its package), which knows what a key must say to use it
 * ({@link #keyProblems}) and what its credentials can do ({@link #capabilities}).
 */
public interface IssuerSpec {

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

    /**
     * The params of {@code key}: {@code required} must be there, nothing outside {@code required}
     * and {@code optional} may be, and no {@code vault:} block (that is the vault type's).
     */
    static List<String> params(KeySpec key, String instance, String type, List<String> required, List<String> optional) {
        List<String> out = new ArrayList<>();
        String where = "keys." + key.name() + ".params";
        for (String r : required) {
            if (!key.params().containsKey(r)) {
                out.add(where + ": '" + r + "' is required for a key of issuer '" + instance + "' (type " + type + ")");
            }
        }
        for (String k : key.params().keySet()) {
            if (!required.contains(k) && !optional.contains(k)) {
                List<String> known = new ArrayList<>(required);
                known.addAll(optional);
                out.add(where + "." + k + ": not a parameter of type " + type + " (known: " + String.join(", ", known) + ")");
            }
        }
        if (key.vault().isPresent()) {
            out.add("keys." + key.name() + ".vault: a key of issuer '" + instance + "' (type " + type + ") takes 'params:',"
                    + " not 'vault:'");
        }
        return out;
    }
}
