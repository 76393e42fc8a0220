package io.keywarden.daemon.runtime;

import java.nio.file.Path;
import java.util.Optional;

/**
 * Where identities come from: SPIRE's Delegated Identity API (its admin socket) or the dev
 * provider, and the audience of the JWT-SVIDs. {@code devSigningKey}/{@code devIssuer}:
 * {@code keywarden dev --signing-key/--issuer-url}, a dev identity whose JWT-SVIDs a provider's
 * federation can be told to trust once.
 */
public record IdentitySettings(Provider provider, String audience, Path spireAdminSocket, Optional<Path> devSigningKey,
                               Optional<String> devIssuer) {
    public IdentitySettings(Provider provider, String audience, Path spireAdminSocket) {
        this(provider, audience, spireAdminSocket, Optional.empty(), Optional.empty());
    }

    public enum Provider { SPIRE, DEV }
}
