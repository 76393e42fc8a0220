package io.keywarden.issuer.federation;

import io.keywarden.attestation.IdentityException;
import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.Lease;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.linux.Secret;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.time.Clock;
import java.time.Instant;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/**
 * Keyless issuance: the workload's JWT-SVID (for this instance's audience) is exchanged at the
 * provider for a short-lived Bearer credential. What varies per provider is the request
 * ({@link #exchange}); what is common is here: the SVID, the answer's token taken off the heap, an
 * expiry that never outlives the SVID it came from, and no early revocation (the credential is
 * simply not served past its expiry; the ledger says {@code revocable: false}).
 */
public abstract class FederationIssuer implements Issuer {
    protected final String name;
    protected final String audience;
    protected final IdentityProvider identity;
    protected final Clock clock;
    protected final ProviderHttp http;

    private final String type;

    /** {@code spec} names the instance and its type; {@code provider} names the provider in messages. */
    protected FederationIssuer(io.keywarden.issuer.IssuerSpec spec, String provider, String audience,
                               java.time.Duration timeout, IdentityProvider identity, Clock clock) {
        this.name = spec.name();
        this.type = spec.type();
        this.audience = audience;
        this.identity = identity;
        this.clock = clock;
        this.http = new ProviderHttp(provider, timeout);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String type() {
        return type;
    }

    @Override
    public boolean revocable() {
        return false;
    }

    /** The fields every RFC 8693 token exchange of a JWT-SVID starts with. */
    protected static Map<String, String> tokenExchange(JwtSvid svid) {
        Map<String, String> f = ProviderHttp.fields();
        f.put("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange");
        f.put("subject_token_type", "urn:ietf:params:oauth:token-type:jwt");
        f.put("subject_token", svid.token());
        return f;
    }

    /** The provider's answer: its token (off the heap), when it ends, and the provider's id for it. */
    public record Minted(Secret token, Instant expiresAt, Optional<String> providerKeyId) {
    }

    /** HTTP headers an agent must send with this instance's credentials besides Authorization (none by default). */
    protected java.util.List<io.keywarden.delivery.Header> headers() {
        return java.util.List.of();
    }

    /** Exchanges {@code svid} for a credential of {@code workload}, with the key's expanded params. */
    protected abstract Minted exchange(Workload workload, Map<String, String> params, JwtSvid svid) throws IssuerException;

    /** The SVID to present: the cached one for this audience (providers that forbid reuse override). */
    protected JwtSvid svid(Workload workload, ProcessInfo opener) throws IdentityException {
        return identity.fetchJwtSvid(workload, opener, audience);
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        JwtSvid svid;
        try {
            svid = svid(workload, opener);
        } catch (IdentityException e) {
            throw new IssuerException("no JWT-SVID for " + workload.spiffeId() + " (audience " + audience + "): "
                    + e.getMessage(), IssuerException.Kind.IDENTITY, e.retryable(), 0);
        }
        Instant now = clock.instant();
        Minted m = exchange(workload, key.paramsFor(workload), svid);
        // Never longer than the identity it was minted from.
        Instant end = m.expiresAt().isBefore(svid.expiresAt()) ? m.expiresAt() : svid.expiresAt();
        if (!end.isAfter(now)) {
            m.token().close();
            throw new IssuerException(http.provider() + " issued a credential for " + workload.name()
                    + " that is already expired", IssuerException.Kind.SERVER_ERROR);
        }
        String leaseId = name + "/" + workload.name() + "/" + UUID.randomUUID();
        return new Lease(new IssuedKey(m.token(), end, leaseId, headers()), now, false, m.providerKeyId())
                .diesAtProvider(m.expiresAt());
    }

    /** Nothing to call: the credential cannot be revoked early; the lease core stops serving it. */
    @Override
    public void revoke(Lease lease) {
    }

    /** Parses a 200 answer's token and lifetime; the body is wiped. */
    protected Minted minted(byte[] body, String tokenField, Instant now, Optional<String> providerKeyId, String what)
            throws IssuerException {
        return new Answers(http).minted(body, tokenField, now, providerKeyId, what);
    }

    /** Token answers of one provider, parsed the same way by every issuer that talks to it. */
    public static final class Answers {
        private final ProviderHttp http;

        public Answers(ProviderHttp http) {
            this.http = http;
        }

        public Minted minted(byte[] body, String tokenField, Instant now, Optional<String> providerKeyId, String what)
                throws IssuerException {
            TokenAnswer a;
            try {
                a = TokenAnswer.parse(body, tokenField);
            } catch (IOException e) {
                throw new IssuerException(http.provider() + " " + what + " answered malformed JSON",
                        IssuerException.Kind.SERVER_ERROR, true, 200);
            } finally {
                Arrays.fill(body, (byte) 0);
            }
            if (a.token().isEmpty()) {
                throw new IssuerException(http.provider() + " " + what + " answered without " + tokenField,
                        IssuerException.Kind.SERVER_ERROR, true, 200);
            }
            Instant end;
            if (a.expireTime().isPresent()) {
                try {
                    end = Instant.parse(a.expireTime().get());
                } catch (java.time.format.DateTimeParseException e) {
                    a.token().get().close();
                    throw new IssuerException(http.provider() + " " + what + " answered an unreadable expireTime",
                            IssuerException.Kind.SERVER_ERROR, true, 200);
                }
            } else {
                // OpenAI's SDKs assume an hour when expires_in is absent; so do we.
                end = now.plusSeconds(a.expiresIn() > 0 ? a.expiresIn() : 3600);
            }
            return new Minted(a.token().get(), end, providerKeyId);
        }
    }
}
