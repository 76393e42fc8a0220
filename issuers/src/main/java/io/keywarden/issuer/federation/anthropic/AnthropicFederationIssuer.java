package io.keywarden.issuer.federation.anthropic;

import io.keywarden.issuer.federation.FederationIssuer;
import io.keywarden.issuer.federation.ProviderHttp;

import io.keywarden.attestation.IdentityException;
import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.issuer.IssuerException;
import io.keywarden.policy.Workload;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Anthropic workload identity federation: RFC 7523 jwt-bearer, JSON body, both beta headers. An
 * assertion carrying a {@code jti} is single-use at Anthropic: an SVID whose {@code jti} was
 * presented once is never presented again (a fresh one is fetched: from SPIRE, with a unique second
 * audience, since its agent caches one SVID per audience). Stock SPIRE SVIDs carry no {@code jti}:
 * the same SVID may then be exchanged again, as Anthropic allows.
 */
public final class AnthropicFederationIssuer extends FederationIssuer {
    static final String BETA = "oauth-2025-04-20,oidc-federation-2026-04-01";
    private final AnthropicFederationType.Spec spec;
    /** jti values presented, until the SVID that carried them expires. */
    private final Map<String, Instant> presented = new ConcurrentHashMap<>();

    public AnthropicFederationIssuer(AnthropicFederationType.Spec spec, IdentityProvider identity, Clock clock) {
        super(spec, "anthropic", spec.audience(), spec.timeout(), identity, clock);
        this.spec = spec;
    }

    /** The Messages API takes the OAuth token only with this beta header. */
    @Override
    protected java.util.List<io.keywarden.delivery.Header> headers() {
        return java.util.List.of(new io.keywarden.delivery.Header("anthropic-beta", "oauth-2025-04-20"));
    }

    @Override
    protected JwtSvid svid(Workload workload, ProcessInfo opener) throws IdentityException {
        Instant now = clock.instant();
        presented.values().removeIf(exp -> !exp.isAfter(now));
        JwtSvid s = identity.fetchJwtSvid(workload, opener, audience);
        String jti = jti(s.token());
        if (jti != null && presented.containsKey(jti)) {
            s = identity.fetchFreshJwtSvid(workload, opener, audience);
            jti = jti(s.token());
            if (jti != null && presented.containsKey(jti)) {
                throw new IdentityException("the identity provider gave the same single-use JWT-SVID (jti) again", true);
            }
        }
        if (jti != null) {
            presented.put(jti, s.expiresAt());
        }
        return s;
    }

    /** The {@code jti} claim of a compact JWT, or null (read, not verified: it is our own SVID). */
    static String jti(String jwt) {
        int a = jwt.indexOf('.');
        int b = jwt.indexOf('.', a + 1);
        if (a < 0 || b < 0) {
            return null;
        }
        try {
            byte[] payload = Base64.getUrlDecoder().decode(jwt.substring(a + 1, b));
            var node = ProviderHttp.JSON.readTree(new String(payload, StandardCharsets.UTF_8)).path("jti");
            return node.isTextual() ? node.asText() : null;
        } catch (IllegalArgumentException | java.io.IOException e) {
            return null;
        }
    }

    @Override
    protected Minted exchange(Workload w, Map<String, String> params, JwtSvid svid) throws IssuerException {
        Map<String, String> f = ProviderHttp.fields();
        f.put("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
        f.put("assertion", svid.token());
        f.put("federation_rule_id", params.get("federationRuleId"));
        f.put("organization_id", spec.organizationId());
        f.put("service_account_id", params.get("serviceAccountId"));
        if (params.containsKey("workspaceId")) {
            f.put("workspace_id", params.get("workspaceId"));
        }
        String what = "token exchange for workload " + w.name() + " (rule " + params.get("federationRuleId") + ")";
        byte[] body = http.post(spec.url(), "application/json", ProviderHttp.json(f), Map.of("anthropic-beta", BETA),
                what);
        return minted(body, "access_token", clock.instant(), Optional.of(params.get("serviceAccountId")), what);
    }
}
