package io.keywarden.issuer.federation.azure;

import io.keywarden.issuer.federation.FederationIssuer;
import io.keywarden.issuer.federation.ProviderHttp;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.issuer.IssuerException;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.util.Map;
import java.util.Optional;

/**
 * Microsoft Entra (Azure OpenAI): OAuth client credentials where the client authenticates with
 * the workload's SVID as a federated credential ({@code client_assertion}, form-encoded). Entra
 * takes RS256 only; a federated credential just created answers {@code AADSTS70021} for a while,
 * which is retried.
 */
public final class AzureEntraIssuer extends FederationIssuer {
    private final AzureEntraType.Spec spec;

    public AzureEntraIssuer(AzureEntraType.Spec spec, IdentityProvider identity, Clock clock) {
        super(spec, "entra", spec.audience(), spec.timeout(), identity, clock);
        this.spec = spec;
    }

    @Override
    protected Minted exchange(Workload w, Map<String, String> params, JwtSvid svid) throws IssuerException {
        Map<String, String> f = ProviderHttp.fields();
        f.put("grant_type", "client_credentials");
        f.put("client_id", params.get("clientId"));
        f.put("scope", spec.scope());
        f.put("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        f.put("client_assertion", svid.token());
        String what = "client credentials for workload " + w.name() + " (client " + params.get("clientId") + ")";
        byte[] body = http.post(spec.url(), "application/x-www-form-urlencoded", ProviderHttp.form(f), Map.of(), what);
        return minted(body, "access_token", clock.instant(), Optional.of(params.get("clientId")), what);
    }
}
