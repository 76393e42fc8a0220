package io.keywarden.issuer;

import java.net.URI;
import java.util.Optional;

/**
 * An issuer type: a plug-in that reads its instances' config blocks, makes their issuers and
 * names the provider their credentials are for. A type is one package (its {@code Type}, its
 * spec record, its issuer and their tests) and one line in
 * {@code META-INF/services/io.keywarden.issuer.IssuerType}; {@link IssuerTypes} finds them.
 *
 * @param <S> the type's own settings record
 */
public interface IssuerType<S extends IssuerSpec> {

    /** The type as written in the config: {@code issuers.<name>.type}. */
    String type();

    /** The record this type's {@link #parse} returns. */
    Class<S> specClass();

    /**
     * An instance's settings from its block ({@code type} already read). Every problem is added
     * through {@code block}, located; null when the block cannot make a spec (a problem says why).
     */
    S parse(IssuerBlock block);

    /**
     * The issuer of an instance. Must not call out (no network): the daemon builds every issuer
     * before it serves, and a provider that is down is a readiness matter ({@link Issuer#unavailable}).
     * Throws with a message naming the instance when its settings cannot make an issuer.
     */
    Issuer create(S spec, IssuerContext context) throws IssuerException;

    /**
     * The provider's API this type's credentials are for (its base URL, taking the credential as a
     * Bearer token): the gateway's upstream for a key the config names none for. Empty: none.
     */
    default Optional<URI> defaultUpstream() {
        return Optional.empty();
    }
}
