package io.keywarden.issuer;

import io.keywarden.attestation.IdentityProvider;
import java.time.Clock;

/** What an {@link IssuerType} makes its issuers with: the node's workload identity provider and clock. */
public record IssuerContext(IdentityProvider identity, Clock clock) {
}
