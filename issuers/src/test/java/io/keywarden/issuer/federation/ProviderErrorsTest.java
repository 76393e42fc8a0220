package io.keywarden.issuer.federation;

import io.keywarden.testkit.FixedIdentity;

import io.keywarden.issuer.federation.openai.OpenAiFederationIssuer;
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
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Every error shape of the providers' contract: a clear reason, the right retry behaviour, no token echoed. */
class ProviderErrorsTest {
    private HttpStub server;
    private final AtomicReference<int[]> status = new AtomicReference<>(new int[] {200});
    private final AtomicReference<String> body = new AtomicReference<>("");
    private final AtomicReference<String> retryAfter = new AtomicReference<>(null);
    private final AtomicReference<String> received = new AtomicReference<>("");
    private OpenAiFederationIssuer issuer;
    private Workload reviewer;
    private final Instant svidEnd = Instant.now().plusSeconds(300);

    @BeforeEach
    void setUp() throws Exception {
        server = HttpStub.start().on("/oauth/token", r -> {
            received.set(r.body());
            HttpStub.Answer a = new HttpStub.Answer(status.get()[0], body.get(), java.util.Map.of());
            return retryAfter.get() == null ? a : a.with("Retry-After", retryAfter.get());
        });
        Policy p = PolicyLoader.parse("""
                keys: {oai: {issuer: oai, params: {serviceAccountId: "{workload.params.sa}"}}}
                workloads:
                  - {name: reviewer, spiffeId: "spiffe://t/reviewer", keys: [oai], params: {sa: svc_1}}
                """, "p.yaml");
        reviewer = p.workload("reviewer").orElseThrow();
        IdentityProvider id = new FixedIdentity("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", svidEnd);
        issuer = new OpenAiFederationIssuer(new io.keywarden.issuer.federation.openai.OpenAiFederationType.Spec("oai",
                server.uri("/oauth/token"), "idp_1",
                io.keywarden.issuer.federation.openai.OpenAiFederationType.Spec.DEFAULT_AUDIENCE, Duration.ofSeconds(2)), id, Clock.systemUTC());
        this.policy = p;
    }

    private Policy policy;

    @AfterEach
    void tearDown() {
        server.close();
    }

    private IssuerException refusedWith(int code, String json) {
        status.set(new int[] {code});
        body.set(json);
        return assertThrows(IssuerException.class, () -> issuer.issue(reviewer, policy.keys().get("oai"), null));
    }

    @Test
    void aGoodExchangeSendsTheContractsFieldsAndNeverOutlivesTheSvid() throws Exception {
        body.set("{\"access_token\":\"oai-token-1\",\"issued_token_type\":\"urn:ietf:params:oauth:token-type:access_token\","
                + "\"token_type\":\"Bearer\",\"expires_in\":86400}");
        Lease l = issuer.issue(reviewer, policy.keys().get("oai"), null);
        var sent = ProviderHttp.JSON.readTree(received.get());
        assertEquals("urn:ietf:params:oauth:grant-type:token-exchange", sent.path("grant_type").asText());
        assertEquals("urn:ietf:params:oauth:token-type:jwt", sent.path("subject_token_type").asText());
        assertEquals("idp_1", sent.path("identity_provider_id").asText());
        assertEquals("svc_1", sent.path("service_account_id").asText(), "the workload's param, expanded");
        assertEquals(svidEnd, l.expiresAt(), "a day asked, the SVID's five minutes given");
        assertEquals("svc_1", l.providerKeyId().orElseThrow());
        assertFalse(issuer.revocable());
        assertEquals("oai-token-1", new String(l.key().secretDuplicate().toByteArray(), StandardCharsets.US_ASCII));
    }

    @Test
    void aRejectedIdentityIsNotRetriedAndSaysWhy() {
        IssuerException e = refusedWith(400, "{\"error\":\"invalid_grant\",\"error_description\":\"no mapping for subject"
                + " spiffe://t/reviewer\"}");
        assertEquals(IssuerException.Kind.REFUSED, e.kind());
        assertFalse(e.retryable());
        assertEquals("openai rejected the workload's identity (token exchange for workload reviewer (service account"
                + " svc_1)): HTTP 400: invalid_grant: no mapping for subject spiffe://t/reviewer", e.getMessage());
        e = refusedWith(401, "{\"error\":{\"type\":\"authentication_error\",\"message\":\"rule does not match\"}}");
        assertFalse(e.retryable());
        assertTrue(e.getMessage().endsWith("HTTP 401: authentication_error: rule does not match"), e.getMessage());
        e = refusedWith(400, "{\"error\":\"invalid_subject_token\"}");
        assertEquals(IssuerException.Kind.REFUSED, e.kind());
    }

    @Test
    void busyAndBrokenProvidersAreRetried() {
        retryAfter.set("7");
        IssuerException e = refusedWith(429, "{\"error\":\"rate_limited\"}");
        assertTrue(e.retryable());
        assertTrue(e.getMessage().endsWith("(Retry-After 7)"), e.getMessage());
        retryAfter.set(null);
        e = refusedWith(503, "{\"error\":\"temporarily_unavailable\",\"error_description\":\"try later\"}");
        assertTrue(e.retryable());
        e = refusedWith(400, "{\"error\":\"temporarily_unavailable\"}");
        assertTrue(e.retryable(), "temporarily_unavailable is retried whatever the status");
        e = refusedWith(502, "<html>bad gateway</html>");
        assertTrue(e.retryable());
        assertTrue(e.getMessage().contains("a non-JSON answer"), e.getMessage());
    }

    @Test
    void entrasNewCredentialPropagationIsRetried() {
        IssuerException e = refusedWith(400, "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS70021: No matching"
                + " federated identity record found for presented assertion.\",\"error_codes\":[70021]}");
        assertTrue(e.retryable(), "right after a federated credential is created");
        assertTrue(e.getMessage().contains("propagates"), e.getMessage());
        e = refusedWith(401, "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS5002727: only RS256\"}");
        assertFalse(e.retryable());
    }

    @Test
    void aMalformedSuccessIsAServerErrorAndLeaksNothing() {
        IssuerException e = refusedWith(200, "{\"token_type\":\"Bearer\"}");
        assertEquals(IssuerException.Kind.SERVER_ERROR, e.kind());
        assertTrue(e.getMessage().contains("without access_token"));
        e = refusedWith(200, "{not json");
        assertTrue(e.getMessage().contains("malformed JSON"));
        e = refusedWith(400, "{\"error\":\"invalid_request\",\"error_description\":\"bad assertion eyJhbGciOiJFUzI1NiJ9.eyJzdWIi"
                + "OiJ4In0.c2ln and sk-abcdefghijklmnop\"}");
        assertFalse(e.getMessage().contains("eyJ") || e.getMessage().contains("sk-abc"), e.getMessage());
    }

    @Test
    void noAnswerIsUnreachableAndRetried() {
        server.close();
        IssuerException e = assertThrows(IssuerException.class, () -> issuer.issue(reviewer, policy.keys().get("oai"), null));
        assertEquals(IssuerException.Kind.UNREACHABLE, e.kind());
        assertTrue(e.retryable());
        assertTrue(e.getMessage().contains("connection refused"), e.getMessage());
    }

    @Test
    void paramsAreCheckedPerType() throws Exception {
        Policy bad = PolicyLoader.parse("""
                keys:
                  a: {issuer: oai}
                  b: {issuer: oai, params: {serviceAccountId: x, color: red}}
                  c: {issuer: claude, params: {serviceAccountId: x}}
                  d: {issuer: oai, vault: {role: r, path: p}, params: {serviceAccountId: x}}
                workloads: []
                """, "p.yaml");
        var instances = new java.util.LinkedHashMap<String, IssuerSpec>();
        instances.put("oai", new io.keywarden.issuer.federation.openai.OpenAiFederationType.Spec("oai", URI.create("http://x"), "idp", "aud", Duration.ofSeconds(1)));
        instances.put("claude", new io.keywarden.issuer.federation.anthropic.AnthropicFederationType.Spec("claude", URI.create("http://x"), "org", "aud",
                Duration.ofSeconds(1)));
        assertEquals(List.of(
                "p.yaml:2:3: keys.a.params: 'serviceAccountId' is required for a key of issuer 'oai' (type openai-federation)",
                "p.yaml:3:3: keys.b.params.color: not a parameter of type openai-federation (known: serviceAccountId)",
                "p.yaml:4:3: keys.c.params: 'federationRuleId' is required for a key of issuer 'claude' (type"
                        + " anthropic-federation)",
                "p.yaml:5:3: keys.d.vault: a key of issuer 'oai' (type openai-federation) takes 'params:', not 'vault:'"),
                io.keywarden.issuer.IssuerRegistry.check(instances, bad).stream()
                        .map(io.keywarden.policy.yaml.Problem::format).toList());
    }
}
