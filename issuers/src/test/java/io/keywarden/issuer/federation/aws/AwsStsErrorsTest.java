package io.keywarden.issuer.federation.aws;

import io.keywarden.issuer.federation.ProviderHttp;
import io.keywarden.testkit.FixedIdentity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.testkit.HttpStub;
import io.keywarden.attestation.IdentityProvider;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.Lease;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.Workload;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** STS's XML answers: credentials become a Bedrock API key; each error code gets its retry behaviour. */
class AwsStsErrorsTest {
    private HttpStub server;
    private final AtomicReference<Object[]> answer = new AtomicReference<>();
    private AwsStsIssuer issuer;
    private Policy policy;
    private Workload w;
    private IdentityProvider identity;

    @BeforeEach
    void setUp() throws Exception {
        server = HttpStub.start().on("/", r -> new HttpStub.Answer((int) answer.get()[0], (String) answer.get()[1],
                java.util.Map.of("Content-Type", "text/xml")));
        policy = PolicyLoader.parse("""
                keys: {bedrock: {issuer: aws, params: {roleArn: "arn:aws:iam::123456789012:role/r"}}}
                workloads: [{name: reviewer, spiffeId: "spiffe://t/reviewer", keys: [bedrock]}]
                """, "p.yaml");
        w = policy.workload("reviewer").orElseThrow();
        IdentityProvider id = new FixedIdentity("eyJ.eyJ.sig", Instant.now().plusSeconds(300));
        issuer = new AwsStsIssuer(new io.keywarden.issuer.federation.aws.AwsStsType.Spec("aws", server.uri("/"), "eu-west-1", "sts.amazonaws.com", Duration.ofHours(1), Duration.ofSeconds(2), io.keywarden.issuer.federation.aws.AwsStsType.Spec.BEDROCK_API_KEY), id,
                Clock.systemUTC());
        this.identity = id;
    }

    @AfterEach
    void tearDown() {
        server.close();
    }

    private IssuerException fails(int status, String code) {
        answer.set(new Object[] {status, "<ErrorResponse><Error><Type>Sender</Type><Code>" + code + "</Code><Message>m "
                + code + "</Message></Error></ErrorResponse>"});
        return assertThrows(IssuerException.class, () -> issuer.issue(w, policy.keys().get("bedrock"), null));
    }

    @Test
    void credentialsBecomeABedrockApiKeyThatEndsWithTheShorterOfSessionAndSvid() throws Exception {
        Instant exp = Instant.now().plusSeconds(120).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
        answer.set(new Object[] {200, "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                + "<AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>s3cr3t</SecretAccessKey><SessionToken>tok"
                + "</SessionToken><Expiration>" + exp + "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                + "</AssumeRoleWithWebIdentityResponse>"});
        Lease l = issuer.issue(w, policy.keys().get("bedrock"), null);
        String key = new String(l.key().secretDuplicate().toByteArray(), StandardCharsets.US_ASCII);
        assertTrue(key.startsWith("bedrock-api-key-"));
        String url = new String(Base64.getDecoder().decode(key.substring(16)), StandardCharsets.US_ASCII);
        assertTrue(url.startsWith("bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=ASIAEXAMPLE%2F"), url);
        assertTrue(url.contains("%2Feu-west-1%2Fbedrock%2Faws4_request") && url.endsWith("&Version=1"), url);
        assertFalse(url.contains("s3cr3t"), "the secret never leaves: only its signature does");
        assertTrue(!l.expiresAt().isAfter(exp) && l.expiresAt().isAfter(Instant.now().plusSeconds(100)), l.toString());
        assertEquals("ASIAEXAMPLE", l.providerKeyId().orElseThrow());
    }

    @Test
    void orTheSessionCredentialsAsACredentialProcessDocument() throws Exception {
        Instant exp = Instant.now().plusSeconds(900).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
        answer.set(new Object[] {200, "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
                + "<AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>s3cr3t</SecretAccessKey><SessionToken>tok"
                + "</SessionToken><Expiration>" + exp + "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                + "</AssumeRoleWithWebIdentityResponse>"});
        AwsStsIssuer raw = new AwsStsIssuer(new io.keywarden.issuer.federation.aws.AwsStsType.Spec("aws", server.uri("/"), "eu-west-1", "sts.amazonaws.com", Duration.ofHours(1),
                Duration.ofSeconds(2), io.keywarden.issuer.federation.aws.AwsStsType.Spec.CREDENTIAL_PROCESS), identity, Clock.systemUTC());
        Lease l = raw.issue(w, policy.keys().get("bedrock"), null);
        var doc = ProviderHttp.JSON.readTree(l.key().secretDuplicate().toByteArray());
        assertEquals(1, doc.path("Version").asInt());
        assertEquals("ASIAEXAMPLE", doc.path("AccessKeyId").asText());
        assertEquals("s3cr3t", doc.path("SecretAccessKey").asText());
        assertEquals("tok", doc.path("SessionToken").asText());
        assertEquals(exp.toString(), doc.path("Expiration").asText());
    }

    @Test
    void rejectedIdentitiesAreNotRetriedOutagesAre() {
        for (String code : new String[] {"InvalidIdentityToken", "IDPRejectedClaim", "ExpiredTokenException", "AccessDenied",
                "RegionDisabledException"}) {
            IssuerException e = fails(400, code);
            assertFalse(e.retryable(), code);
            assertTrue(e.getMessage().startsWith("aws rejected the workload's identity"), e.getMessage());
            assertTrue(e.getMessage().contains(code), e.getMessage());
        }
        assertTrue(fails(400, "IDPCommunicationError").retryable());
        assertTrue(fails(400, "Throttling").retryable());
        assertTrue(fails(503, "ServiceUnavailable").retryable());
        answer.set(new Object[] {502, "<html>bad gateway"});
        IssuerException e = assertThrows(IssuerException.class, () -> issuer.issue(w, policy.keys().get("bedrock"), null));
        assertTrue(e.retryable());
        assertTrue(e.getMessage().contains("not the XML STS answers"), e.getMessage());
        answer.set(new Object[] {200, "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>"});
        e = assertThrows(IssuerException.class, () -> issuer.issue(w, policy.keys().get("bedrock"), null));
        assertTrue(e.getMessage().contains("not the XML STS answers"), "no DTD, no external entity: " + e.getMessage());
    }
}
