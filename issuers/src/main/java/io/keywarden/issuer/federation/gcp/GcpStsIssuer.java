package io.keywarden.issuer.federation.gcp;

import io.keywarden.issuer.federation.FederationIssuer;
import io.keywarden.issuer.federation.ProviderHttp;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.issuer.IssuerException;
import io.keywarden.linux.Secret;
import io.keywarden.policy.Workload;
import java.net.URI;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;

/**
 * Google Vertex AI: the SVID is exchanged at Google's STS (form-encoded) for a federated access
 * token; with the key's {@code serviceAccount}, that token then impersonates the service account
 * ({@code generateAccessToken}), whose token is served. Both end at their own expiry.
 */
public final class GcpStsIssuer extends FederationIssuer {
    private final GcpStsType.Spec spec;

    public GcpStsIssuer(GcpStsType.Spec spec, IdentityProvider identity, Clock clock) {
        super(spec, "google", spec.svidAudience(), spec.timeout(), identity, clock);
        this.spec = spec;
    }

    @Override
    protected Minted exchange(Workload w, Map<String, String> params, JwtSvid svid) throws IssuerException {
        Map<String, String> f = tokenExchange(svid);
        f.put("audience", spec.audience());
        f.put("scope", spec.scope());
        f.put("requested_token_type", "urn:ietf:params:oauth:token-type:access_token");
        String what = "STS exchange for workload " + w.name();
        byte[] body = http.post(spec.url(), "application/x-www-form-urlencoded", ProviderHttp.form(f), Map.of(), what);
        Minted sts = minted(body, "access_token", clock.instant(), Optional.empty(), what);
        String sa = params.get("serviceAccount");
        if (sa == null) {
            return sts;
        }
        // Impersonation: the federated token as Bearer, for at most its own remaining life.
        try (Secret bearer = sts.token()) {
            long seconds = Math.max(60, Math.min(3600, java.time.Duration.between(clock.instant(), sts.expiresAt())
                    .toSeconds()));
            URI url = URI.create(spec.impersonateUrl().toString().replaceAll("/+$", "") + "/v1/projects/-/serviceAccounts/"
                    + URLEncoder.encode(sa, StandardCharsets.UTF_8) + ":generateAccessToken");
            byte[] req = ("{\"scope\":[\"" + spec.scope().replace("\"", "") + "\"],\"lifetime\":\"" + seconds + "s\"}")
                    .getBytes(StandardCharsets.UTF_8);
            String impersonation = "service account impersonation of " + sa + " for workload " + w.name();
            byte[] raw = bearer.toByteArray();
            String header = "Bearer " + new String(raw, StandardCharsets.US_ASCII);
            java.util.Arrays.fill(raw, (byte) 0);
            byte[] answer = http.post(url, "application/json", req, Map.of("Authorization", header), impersonation);
            return minted(answer, "accessToken", clock.instant(), Optional.of(sa), impersonation);
        }
    }
}
