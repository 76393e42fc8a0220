package io.keywarden.issuer.federation.aws;

import io.keywarden.issuer.federation.FederationIssuer;
import io.keywarden.issuer.federation.ProviderHttp;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.issuer.IssuerException;
import io.keywarden.linux.Secret;
import io.keywarden.policy.Workload;
import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.util.Arrays;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.NodeList;

/**
 * AWS Bedrock: {@code AssumeRoleWithWebIdentity} (an unsigned STS Query call, XML answer) with the
 * SVID for the key's {@code roleArn}, then a short-term Bedrock API key made locally from the
 * session credentials: a SigV4-presigned {@code POST https://bedrock.amazonaws.com/?Action=
 * CallWithBearerToken} (service {@code bedrock}), without {@code https://}, with {@code &Version=1},
 * base64, prefixed {@code bedrock-api-key-}. The session's secret never leaves this method — unless
 * {@code output: credential-process}, where the session credentials themselves are served as the
 * JSON an AWS SDK's {@code credential_process} reads (for services other than Bedrock).
 */
public final class AwsStsIssuer extends FederationIssuer {
    static final String BEDROCK_HOST = "bedrock.amazonaws.com";
    private final AwsStsType.Spec spec;

    public AwsStsIssuer(AwsStsType.Spec spec, IdentityProvider identity, Clock clock) {
        super(spec, "aws", spec.audience(), spec.timeout(), identity, clock);
        this.spec = spec;
    }

    @Override
    protected Minted exchange(Workload w, Map<String, String> params, JwtSvid svid) throws IssuerException {
        String role = params.get("roleArn");
        Map<String, String> f = ProviderHttp.fields();
        f.put("Action", "AssumeRoleWithWebIdentity");
        f.put("Version", "2011-06-15");
        f.put("RoleArn", role);
        f.put("RoleSessionName", ("keywarden-" + w.name()).substring(0, Math.min(64, 10 + w.name().length())));
        f.put("WebIdentityToken", svid.token());
        f.put("DurationSeconds", Long.toString(spec.duration().toSeconds()));
        String what = "AssumeRoleWithWebIdentity for workload " + w.name() + " (role " + role + ")";
        byte[] body = ProviderHttp.form(f);
        HttpResponse<byte[]> resp;
        try {
            resp = http.send(HttpRequest.newBuilder(spec.url()).header("Content-Type", "application/x-www-form-urlencoded")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(body)), what);
        } finally {
            Arrays.fill(body, (byte) 0);
        }
        Document doc;
        try {
            doc = parse(resp.body());
        } catch (Exception e) {
            throw new IssuerException("aws " + what + " failed: HTTP " + resp.statusCode() + ": not the XML STS answers",
                    IssuerException.Kind.SERVER_ERROR, true, resp.statusCode());
        } finally {
            Arrays.fill(resp.body(), (byte) 0);
        }
        if (resp.statusCode() != 200) {
            throw failure(what, resp.statusCode(), text(doc, "Code"), text(doc, "Message"));
        }
        String keyId = text(doc, "AccessKeyId");
        String secret = text(doc, "SecretAccessKey");
        String session = text(doc, "SessionToken");
        String expiration = text(doc, "Expiration");
        if (keyId.isEmpty() || secret.isEmpty() || session.isEmpty() || expiration.isEmpty()) {
            throw new IssuerException("aws " + what + " answered without credentials", IssuerException.Kind.SERVER_ERROR,
                    true, 200);
        }
        Instant now = clock.instant();
        Instant end;
        try {
            end = Instant.parse(expiration);
        } catch (java.time.format.DateTimeParseException e) {
            throw new IssuerException("aws " + what + " answered an unreadable Expiration", IssuerException.Kind.SERVER_ERROR,
                    true, 200);
        }
        if (spec.output().equals(AwsStsType.Spec.CREDENTIAL_PROCESS)) {
            // The JSON an AWS SDK reads from credential_process: `credential_process = cat <mount>/<key>/api_key`.
            byte[] json = ("{\"Version\":1,\"AccessKeyId\":\"" + keyId + "\",\"SecretAccessKey\":\"" + secret
                    + "\",\"SessionToken\":\"" + session + "\",\"Expiration\":\"" + end + "\"}")
                    .getBytes(StandardCharsets.UTF_8);
            Secret s = Secret.copyOf(json);
            Arrays.fill(json, (byte) 0);
            return new Minted(s, end, Optional.of(keyId));
        }
        long expires = Math.max(1, Math.min(43200, java.time.Duration.between(now, end).toSeconds()));
        byte[] secretBytes = secret.getBytes(StandardCharsets.US_ASCII);
        String query = SigV4.presignQuery("POST", BEDROCK_HOST, "/", Map.of("Action", "CallWithBearerToken"), keyId,
                secretBytes, session, spec.region(), "bedrock", now, expires);
        Arrays.fill(secretBytes, (byte) 0);
        byte[] url = (BEDROCK_HOST + "/?" + query + "&Version=1").getBytes(StandardCharsets.US_ASCII);
        byte[] b64 = Base64.getEncoder().encode(url);
        Arrays.fill(url, (byte) 0);
        byte[] token = new byte[16 + b64.length];
        System.arraycopy("bedrock-api-key-".getBytes(StandardCharsets.US_ASCII), 0, token, 0, 16);
        System.arraycopy(b64, 0, token, 16, b64.length);
        Arrays.fill(b64, (byte) 0);
        Secret s = Secret.copyOf(token);
        Arrays.fill(token, (byte) 0);
        return new Minted(s, now.plusSeconds(expires), Optional.of(keyId));
    }

    /** STS's error codes: a rejected identity is not retried; throttling and the IdP's outages are. */
    private IssuerException failure(String what, int status, String code, String message) {
        String base = "aws " + what + " failed: HTTP " + status + (code.isEmpty() ? "" : ": " + code)
                + (message.isEmpty() ? "" : ": " + io.keywarden.issuer.SecretText.clean(message));
        switch (code) {
            case "IDPCommunicationError", "Throttling", "ServiceUnavailable", "InternalFailure" -> {
                return new IssuerException(base, IssuerException.Kind.SERVER_ERROR, true, status);
            }
            case "InvalidIdentityToken", "IDPRejectedClaim", "ExpiredTokenException", "AccessDenied",
                 "RegionDisabledException", "MalformedPolicyDocument" -> {
                return new IssuerException("aws rejected the workload's identity (" + what + "): HTTP " + status + ": "
                        + code + (message.isEmpty() ? "" : ": " + io.keywarden.issuer.SecretText.clean(message)),
                        IssuerException.Kind.REFUSED, false, status);
            }
            default -> {
                return IssuerException.http(base, status);
            }
        }
    }

    /** XML with no DTDs and no external entities: STS answers are plain. */
    static Document parse(byte[] xml) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        f.setExpandEntityReferences(false);
        f.setNamespaceAware(false);
        return f.newDocumentBuilder().parse(new ByteArrayInputStream(xml));
    }

    static String text(Document d, String tag) {
        NodeList n = d.getElementsByTagName(tag);
        return n.getLength() == 0 ? "" : n.item(0).getTextContent().trim();
    }
}
