package io.keywarden.issuer.federation.gcp;

import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerBlock;
import io.keywarden.issuer.IssuerContext;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerType;
import io.keywarden.policy.KeySpec;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * {@code type: gcp-sts}: Google STS token exchange for Vertex AI: the SVID (audience
 * {@code svidAudience}) for a federated access token of the workload identity pool provider
 * {@code audience}; with the key's {@code serviceAccount}, then impersonation
 * ({@code generateAccessToken}). Not revocable.
 */
public final class GcpStsType implements IssuerType<GcpStsType.Spec> {

    /** The settings of one instance. */
    public record Spec(String name, URI url, String audience, String svidAudience, String scope, URI impersonateUrl, Duration timeout) implements IssuerSpec {
        public static final String DEFAULT_URL = "https://sts.googleapis.com/v1/token";
        public static final String DEFAULT_IMPERSONATE_URL = "https://iamcredentials.googleapis.com";
        public static final String DEFAULT_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

        @Override
        public String type() {
            return "gcp-sts";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(false, false, Optional.of(svidAudience));
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return IssuerSpec.params(key, name, type(), List.of(), List.of("serviceAccount"));
        }
    }

    @Override
    public String type() {
        return "gcp-sts";
    }

    @Override
    public Class<Spec> specClass() {
        return Spec.class;
    }

    @Override
    public Spec parse(IssuerBlock b) {
        String aud = b.nonEmpty("audience", null);
        if (aud != null && !aud.startsWith("//iam.googleapis.com/")) {
            b.problem(b.where() + ".audience '" + aud + "' must be the workload identity pool"
                    + " provider's resource name, //iam.googleapis.com/projects/N/locations/global/"
                    + "workloadIdentityPools/P/providers/X");
        }
        return new Spec(b.name(), b.url("url", Spec.DEFAULT_URL), aud,
                b.nonEmpty("svidAudience", aud == null ? "" : "https:" + aud),
                b.nonEmpty("scope", Spec.DEFAULT_SCOPE),
                b.url("impersonateUrl", Spec.DEFAULT_IMPERSONATE_URL), b.timeout());
    }

    @Override
    public Issuer create(Spec spec, IssuerContext context) throws IssuerException {
        return new GcpStsIssuer(spec, context.identity(), context.clock());
    }
}
