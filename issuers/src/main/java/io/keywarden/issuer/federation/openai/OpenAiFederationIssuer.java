package io.keywarden.issuer.federation.openai;

import io.keywarden.issuer.federation.FederationIssuer;
import io.keywarden.issuer.federation.ProviderHttp;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.issuer.IssuerException;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.util.Map;
import java.util.Optional;

/** OpenAI workload identity federation: RFC 8693 token exchange, JSON body. */
public final class OpenAiFederationIssuer extends FederationIssuer {
    private final OpenAiFederationType.Spec spec;

    public OpenAiFederationIssuer(OpenAiFederationType.Spec spec, IdentityProvider identity, Clock clock) {
        super(spec, "openai", spec.audience(), spec.timeout(), identity, clock);
        this.spec = spec;
    }

    @Override
    protected Minted exchange(Workload w, Map<String, String> params, JwtSvid svid) throws IssuerException {
        Map<String, String> f = tokenExchange(svid);
        f.put("identity_provider_id", spec.identityProviderId());
        String sa = params.get("serviceAccountId");
        f.put("service_account_id", sa);
        String what = "token exchange for workload " + w.name() + " (service account " + sa + ")";
        byte[] body = http.post(spec.url(), "application/json", ProviderHttp.json(f), Map.of(), what);
        return minted(body, "access_token", clock.instant(), Optional.of(sa), what);
    }
}
