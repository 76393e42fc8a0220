package io.keywarden.issuer.federation.okta;

import io.keywarden.issuer.federation.FederationIssuer;
import io.keywarden.issuer.federation.ProviderHttp;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.Lease;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.time.Instant;
import java.util.Map;
import java.util.UUID;

/**
 * Okta client credentials with {@code private_key_jwt}: a raw SVID cannot be an Okta client
 * assertion (Okta wants {@code iss = sub = client_id}), so each workload has its own Okta service
 * app ({@code clientId}) whose key is the issuer's {@link ClientKeys}; keywarden decides per process
 * who may have that app's token. Not revocable.
 */
public final class OktaClientCredentialsIssuer implements Issuer {
    private final OktaClientCredentialsType.Spec spec;
    private final ClientKeys keys;
    private final Clock clock;
    private final ProviderHttp http;
    private final FederationIssuer.Answers answers;

    public OktaClientCredentialsIssuer(OktaClientCredentialsType.Spec spec, ClientKeys keys, Clock clock) {
        this.spec = spec;
        this.keys = keys;
        this.clock = clock;
        this.http = new ProviderHttp("okta", spec.timeout());
        this.answers = new FederationIssuer.Answers(http);
    }

    @Override
    public String name() {
        return spec.name();
    }

    @Override
    public String type() {
        return spec.type();
    }

    @Override
    public boolean revocable() {
        return false;
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        String clientId = key.paramsFor(workload).get("clientId");
        Map<String, String> f = ProviderHttp.fields();
        f.put("grant_type", "client_credentials");
        if (!spec.scope().isEmpty()) {
            f.put("scope", spec.scope());
        }
        f.put("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        f.put("client_assertion", keys.clientAssertion(clientId, spec.url().toString()));
        String what = "client credentials for workload " + workload.name() + " (client " + clientId + ")";
        Instant now = clock.instant();
        byte[] body = http.post(spec.url(), "application/x-www-form-urlencoded", ProviderHttp.form(f), Map.of(), what);
        FederationIssuer.Minted m = answers.minted(body, "access_token", now, java.util.Optional.of(clientId), what);
        String leaseId = spec.name() + "/" + workload.name() + "/" + UUID.randomUUID();
        return new Lease(new IssuedKey(m.token(), m.expiresAt(), leaseId), now, false, m.providerKeyId())
                .diesAtProvider(m.expiresAt());
    }

    @Override
    public void revoke(Lease lease) {
    }

    @Override
    public java.util.List<com.nimbusds.jose.jwk.JWK> publicKeys() {
        return keys.publicKeys();
    }
}
