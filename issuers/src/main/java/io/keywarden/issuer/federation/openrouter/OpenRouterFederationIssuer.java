package io.keywarden.issuer.federation.openrouter;

import io.keywarden.issuer.federation.FederationIssuer;
import io.keywarden.issuer.federation.ProviderHttp;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.issuer.IssuerException;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.util.Map;
import java.util.Optional;

/** OpenRouter federation (enterprise plans): RFC 8693 token exchange, form-encoded, for a federation policy. */
public final class OpenRouterFederationIssuer extends FederationIssuer {
    private final OpenRouterFederationType.Spec spec;

    public OpenRouterFederationIssuer(OpenRouterFederationType.Spec spec, IdentityProvider identity, Clock clock) {
        super(spec, "openrouter", spec.audience(), spec.timeout(), identity, clock);
        this.spec = spec;
    }

    @Override
    protected Minted exchange(Workload w, Map<String, String> params, JwtSvid svid) throws IssuerException {
        Map<String, String> f = tokenExchange(svid);
        f.put("federation_policy_id", params.get("federationPolicyId"));
        String what = "token exchange for workload " + w.name() + " (policy " + params.get("federationPolicyId") + ")";
        byte[] body = http.post(spec.url(), "application/x-www-form-urlencoded", ProviderHttp.form(f), Map.of(), what);
        return minted(body, "access_token", clock.instant(), Optional.of(params.get("federationPolicyId")), what);
    }
}
