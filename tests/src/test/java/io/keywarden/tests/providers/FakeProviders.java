package io.keywarden.tests.providers;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.source.ImmutableJWKSet;
import com.nimbusds.jose.proc.DefaultJOSEObjectTypeVerifier;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import io.keywarden.testkit.HttpStub;
import java.io.IOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The token endpoints of OpenAI, Anthropic and Google for tests (contracts/providers.md), each
 * verifying the workload's JWT-SVID the way the provider does: ES256 signature against the
 * identity provider's JWKS by {@code kid}, {@code iss}, the provider's own {@code aud}, {@code sub}
 * bound by the provider's mapping, {@code iat}/{@code exp}, and for Anthropic single use of a
 * {@code jti}. Answers are the providers' shapes, errors RFC 6749 §5.2. Every token minted is
 * recorded with the subject it was minted for, so tests can tell whose token a process read.
 */
public final class FakeProviders implements AutoCloseable {
    public static final String OPENAI_AUD = "https://api.openai.com/v1";
    public static final String ANTHROPIC_AUD = "https://api.anthropic.com";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One minted credential: which provider, for which SPIFFE ID, the token, its lifetime. */
    public record Minted(String provider, String subject, String token, long expiresIn) {
    }

    private final Supplier<String> jwks;
    private final String issuer;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, String> openAiAccounts = new ConcurrentHashMap<>();
    private final Map<String, String> anthropicRules = new ConcurrentHashMap<>();
    private final Map<String, String> gcpImpersonators = new ConcurrentHashMap<>();
    private final Set<String> usedJti = ConcurrentHashMap.newKeySet();
    public final List<Minted> minted = java.util.Collections.synchronizedList(new ArrayList<>());
    public final List<String> refusals = java.util.Collections.synchronizedList(new ArrayList<>());
    public volatile long expiresIn = 3600;
    private final Map<String, String> gcpTokens = new ConcurrentHashMap<>();
    private HttpStub server;
    public static final String OPENAI_IDP = "idp_keywarden";
    public static final String ANTHROPIC_ORG = "org_keywarden";
    public static final String GCP_PROVIDER =
            "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/agents/providers/keywarden";

    /** {@code jwks} is the identity provider's JWKS JSON; {@code issuer} the {@code iss} it must carry. */
    public FakeProviders(Supplier<String> jwks, String issuer) {
        this.jwks = jwks;
        this.issuer = issuer;
    }

    /** OpenAI: the service account {@code sa} may be used by {@code subject} (a mapping of the identity provider). */
    public FakeProviders openAiServiceAccount(String sa, String subject) {
        openAiAccounts.put(sa, subject);
        return this;
    }

    /** Anthropic: the federation rule {@code rule} matches {@code subject}. */
    public FakeProviders anthropicRule(String rule, String subject) {
        anthropicRules.put(rule, subject);
        return this;
    }

    /** Google: {@code subject}'s federated token may impersonate {@code serviceAccount}. */
    public FakeProviders gcpImpersonation(String serviceAccount, String subject) {
        gcpImpersonators.put(serviceAccount, subject);
        return this;
    }

    public FakeProviders start() throws IOException {
        server = HttpStub.start();
        server.on("/openai/oauth/token", ex -> handle(ex, this::openAi));
        server.on("/anthropic/v1/oauth/token", ex -> handle(ex, this::anthropic));
        server.on("/gcp/v1/token", ex -> handle(ex, this::gcpSts));
        server.on("/gcp-iam/", ex -> handle(ex, this::gcpImpersonate));
        server.on("/azure/oauth2/v2.0/token", ex -> handle(ex, this::azure));
        server.on("/openrouter/api/v1/keys", this::openRouter);
        server.on("/aws/", this::awsSts);
        server.on("/openrouter/api/v1/oauth/token", ex -> handle(ex, this::openRouterFederation));
        server.on("/okta/oauth2/default/v1/token", ex -> handle(ex, this::okta));
        return this;
    }

    public String url(String path) {
        return server.uri(path).toString();
    }

    /** What a handler answers: a status and a JSON body. */
    private record Reply(int status, Object body) {
    }

    @FunctionalInterface
    private interface Handler {
        Reply handle(HttpStub.Request ex, byte[] body) throws Exception;
    }

    private HttpStub.Answer handle(HttpStub.Request ex, Handler h) throws IOException {
        Reply a;
        try {
            if (!ex.method().equals("POST")) {
                a = error(405, "invalid_request", "POST only");
            } else {
                a = h.handle(ex, ex.bytes());
            }
        } catch (Exception e) {
            a = error(500, "server_error", e.getClass().getSimpleName());
        }
        if (a.status() != 200) {
            refusals.add(ex.path() + " " + a.status() + " " + a.body());
        }
        return HttpStub.Answer.json(a.status(), JSON.writeValueAsString(a.body()));
    }

    private static Reply error(int status, String error, String description) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("error", error);
        m.put("error_description", description);
        return new Reply(status, m);
    }

    /** Verifies the SVID as the providers do; returns its claims, or null with {@code why[0]} set. */
    private JWTClaimsSet verify(String jwt, String audience, String[] why) {
        try {
            SignedJWT parsed = SignedJWT.parse(jwt);
            if (parsed.getHeader().getKeyID() == null) {
                why[0] = "the assertion has no kid";
                return null;
            }
            DefaultJWTProcessor<SecurityContext> p = new DefaultJWTProcessor<>();
            p.setJWSTypeVerifier(new DefaultJOSEObjectTypeVerifier<>(JOSEObjectType.JWT, null));
            p.setJWSKeySelector(new JWSVerificationKeySelector<>(Set.of(JWSAlgorithm.ES256, JWSAlgorithm.RS256),
                    new ImmutableJWKSet<>(JWKSet.parse(jwks.get()))));
            DefaultJWTClaimsVerifier<SecurityContext> v = new DefaultJWTClaimsVerifier<>(audience,
                    new JWTClaimsSet.Builder().issuer(issuer).build(), Set.of("sub", "exp", "iat"));
            v.setMaxClockSkew(30);
            p.setJWTClaimsSetVerifier(v);
            return p.process(parsed, null);
        } catch (Exception e) {
            why[0] = "the assertion does not verify: " + e.getMessage();
            return null;
        }
    }

    private String token(String prefix) {
        byte[] b = new byte[24];
        random.nextBytes(b);
        return prefix + HexFormat.of().formatHex(b);
    }

    private Reply mint(String provider, String subject, String prefix) {
        String t = token(prefix);
        minted.add(new Minted(provider, subject, t, expiresIn));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("access_token", t);
        m.put("issued_token_type", "urn:ietf:params:oauth:token-type:access_token");
        m.put("token_type", "Bearer");
        m.put("expires_in", expiresIn);
        return new Reply(200, m);
    }

    private Reply openAi(HttpStub.Request ex, byte[] body) throws IOException {
        if (!ex.header("Content-Type").startsWith("application/json")) {
            return error(400, "invalid_request", "JSON body expected");
        }
        JsonNode r = JSON.readTree(body);
        if (!"urn:ietf:params:oauth:grant-type:token-exchange".equals(r.path("grant_type").asText())
                || !"urn:ietf:params:oauth:token-type:jwt".equals(r.path("subject_token_type").asText())) {
            return error(400, "unsupported_grant_type", "token exchange of a jwt expected");
        }
        if (!OPENAI_IDP.equals(r.path("identity_provider_id").asText())) {
            return error(400, "invalid_request", "unknown identity provider");
        }
        String[] why = new String[1];
        JWTClaimsSet c = verify(r.path("subject_token").asText(), OPENAI_AUD, why);
        if (c == null) {
            return error(400, "invalid_subject_token", why[0]);
        }
        String sa = r.path("service_account_id").asText();
        if (!c.getSubject().equals(openAiAccounts.get(sa))) {
            return error(400, "invalid_grant", "service account " + sa + " is not mapped to " + c.getSubject());
        }
        return mint("openai", c.getSubject(), "oai-wif-");
    }

    private Reply anthropic(HttpStub.Request ex, byte[] body) throws IOException {
        String beta = ex.header("anthropic-beta");
        if (beta == null || !beta.contains("oauth-2025-04-20") || !beta.contains("oidc-federation-2026-04-01")) {
            return new Reply(400, Map.of("type", "error", "error", Map.of("type", "invalid_request_error",
                    "message", "the anthropic-beta header must enable oauth-2025-04-20 and oidc-federation-2026-04-01")));
        }
        JsonNode r = JSON.readTree(body);
        if (!"urn:ietf:params:oauth:grant-type:jwt-bearer".equals(r.path("grant_type").asText())) {
            return error(400, "unsupported_grant_type", "jwt-bearer expected");
        }
        if (!ANTHROPIC_ORG.equals(r.path("organization_id").asText())) {
            return error(401, "invalid_grant", "no such organization");
        }
        String[] why = new String[1];
        JWTClaimsSet c = verify(r.path("assertion").asText(), ANTHROPIC_AUD, why);
        if (c == null) {
            return error(401, "invalid_grant", why[0]);
        }
        if (c.getExpirationTime().getTime() - c.getIssueTime().getTime() > 3_600_000L) {
            return error(401, "invalid_grant", "assertion lifetime over 3600 s");
        }
        if (c.getJWTID() != null && !usedJti.add(c.getJWTID())) {
            return error(401, "invalid_grant", "assertion already used (jti)");
        }
        String rule = r.path("federation_rule_id").asText();
        if (!c.getSubject().equals(anthropicRules.get(rule)) || r.path("service_account_id").asText().isEmpty()) {
            return error(401, "invalid_grant", "federation rule " + rule + " does not match");
        }
        return mint("anthropic", c.getSubject(), "sk-ant-oat01-");
    }

    private static Map<String, String> form(byte[] body) {
        Map<String, String> m = new LinkedHashMap<>();
        for (String kv : new String(body, StandardCharsets.UTF_8).split("&")) {
            int i = kv.indexOf('=');
            if (i > 0) {
                m.put(URLDecoder.decode(kv.substring(0, i), StandardCharsets.UTF_8),
                        URLDecoder.decode(kv.substring(i + 1), StandardCharsets.UTF_8));
            }
        }
        return m;
    }

    private Reply gcpSts(HttpStub.Request ex, byte[] body) {
        if ((ex.header("Authorization") != null)) {
            return error(400, "invalid_request", "no Authorization header on STS");
        }
        Map<String, String> f = form(body);
        if (!"urn:ietf:params:oauth:grant-type:token-exchange".equals(f.get("grant_type"))
                || !"urn:ietf:params:oauth:token-type:access_token".equals(f.get("requested_token_type"))
                || !"urn:ietf:params:oauth:token-type:jwt".equals(f.get("subject_token_type"))
                || f.get("scope") == null) {
            return error(400, "invalid_request", "token exchange fields missing");
        }
        if (!GCP_PROVIDER.equals(f.get("audience"))) {
            return error(400, "invalid_target", "unknown workload identity pool provider");
        }
        String[] why = new String[1];
        JWTClaimsSet c = verify(f.get("subject_token"), "https:" + GCP_PROVIDER, why);
        if (c == null) {
            return error(400, "invalid_grant", why[0]);
        }
        Reply a = mint("google-sts", c.getSubject(), "ya29.fed-");
        @SuppressWarnings("unchecked")
        String t = (String) ((Map<String, Object>) a.body()).get("access_token");
        gcpTokens.put(t, c.getSubject());
        return a;
    }

    private Reply gcpImpersonate(HttpStub.Request ex, byte[] body) throws IOException {
        String path = ex.path();
        String prefix = "/gcp-iam/v1/projects/-/serviceAccounts/";
        if (!path.startsWith(prefix) || !path.endsWith(":generateAccessToken")) {
            return new Reply(404, Map.of("error", Map.of("code", 404, "status", "NOT_FOUND", "message", path)));
        }
        String sa = URLDecoder.decode(path.substring(prefix.length(), path.length() - ":generateAccessToken".length()),
                StandardCharsets.UTF_8);
        String auth = ex.header("Authorization");
        String subject = auth == null || !auth.startsWith("Bearer ") ? null : gcpTokens.get(auth.substring(7));
        if (subject == null) {
            return new Reply(401, Map.of("error", Map.of("code", 401, "status", "UNAUTHENTICATED",
                    "message", "a federated access token is required")));
        }
        if (!subject.equals(gcpImpersonators.get(sa))) {
            return new Reply(403, Map.of("error", Map.of("code", 403, "status", "PERMISSION_DENIED",
                    "message", "iam.serviceAccounts.getAccessToken denied on " + sa)));
        }
        JsonNode r = JSON.readTree(body);
        if (!r.path("scope").isArray() || !r.path("lifetime").asText().endsWith("s")) {
            return new Reply(400, Map.of("error", Map.of("code", 400, "status", "INVALID_ARGUMENT", "message", "scope")));
        }
        String t = token("ya29.sa-");
        minted.add(new Minted("google", subject, t, expiresIn));
        return new Reply(200, Map.of("accessToken", t, "expireTime", Instant.now().plusSeconds(expiresIn).toString()));
    }

    /** Entra: the app registration {@code clientId} has a federated credential for {@code subject}. */
    public FakeProviders azureFederatedCredential(String clientId, String subject) {
        azureCredentials.put(clientId, subject);
        return this;
    }

    private final Map<String, String> azureCredentials = new ConcurrentHashMap<>();
    public static final String AZURE_AUD = "api://AzureADTokenExchange";

    private Reply azure(HttpStub.Request ex, byte[] body) throws Exception {
        Map<String, String> f = form(body);
        if (!"client_credentials".equals(f.get("grant_type"))
                || !"urn:ietf:params:oauth:client-assertion-type:jwt-bearer".equals(f.get("client_assertion_type"))
                || !"https://cognitiveservices.azure.com/.default".equals(f.get("scope"))) {
            return azureError(400, "invalid_request", "AADSTS900144: client credentials with a client assertion expected",
                    900144);
        }
        String assertion = f.get("client_assertion");
        SignedJWT parsed = SignedJWT.parse(assertion);
        if (!JWSAlgorithm.RS256.equals(parsed.getHeader().getAlgorithm())) {
            return azureError(401, "invalid_client", "AADSTS5002727: only RS256 assertions are accepted", 5002727);
        }
        JWKSet set = JWKSet.parse(jwks.get());
        var k = set.getKeyByKeyId(parsed.getHeader().getKeyID());
        if (k == null || k.getKeyUse() == null || !"sig".equals(k.getKeyUse().identifier())) {
            return azureError(401, "invalid_client", "AADSTS700027: the signing key must be published with use sig",
                    700027);
        }
        String[] why = new String[1];
        JWTClaimsSet c = verify(assertion, AZURE_AUD, why);
        if (c == null) {
            return azureError(401, "invalid_client", "AADSTS700024: " + why[0], 700024);
        }
        String subject = azureCredentials.get(f.get("client_id"));
        if (subject == null || !subject.equals(c.getSubject())) {
            return azureError(400, "invalid_client", "AADSTS70021: No matching federated identity record found for"
                    + " presented assertion subject", 70021);
        }
        Reply a = mint("azure", c.getSubject(), "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.azure-");
        return a;
    }

    private static Reply azureError(int status, String error, String description, int code) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("error", error);
        m.put("error_description", description);
        m.put("error_codes", List.of(code));
        m.put("trace_id", "t-1");
        m.put("correlation_id", "c-1");
        return new Reply(status, m);
    }

    /** OpenRouter's management API: its keys by hash, {@code managementKey} required as Bearer. */
    public final Map<String, Map<String, Object>> openRouterKeys = new ConcurrentHashMap<>();
    public final Set<String> openRouterDeleted = ConcurrentHashMap.newKeySet();
    public volatile String openRouterManagementKey = "sk-or-mgmt-test";

    private HttpStub.Answer openRouter(HttpStub.Request ex) throws IOException {
        Reply a;
        String auth = ex.header("Authorization");
        byte[] body = ex.bytes();
        String path = ex.path();
        if (!("Bearer " + openRouterManagementKey).equals(auth)) {
            a = new Reply(401, Map.of("error", Map.of("code", 401, "message", "invalid management key")));
        } else if (ex.method().equals("POST") && path.equals("/openrouter/api/v1/keys")) {
            JsonNode r = JSON.readTree(body);
            Instant exp = Instant.parse(r.path("expires_at").asText());
            if (!exp.isAfter(Instant.now()) || r.path("name").asText().isEmpty()) {
                a = new Reply(400, Map.of("error", Map.of("code", 400, "message", "expires_at must be in the future")));
            } else {
                String hash = token("");
                String key = token("sk-or-v1-");
                Map<String, Object> data = new LinkedHashMap<>();
                data.put("hash", hash);
                data.put("name", r.path("name").asText());
                data.put("limit", r.path("limit").isNumber() ? r.path("limit").decimalValue() : null);
                data.put("limit_reset", r.path("limit_reset").asText(null));
                data.put("expires_at", exp.toString());
                data.put("usage", 0);
                data.put("key", key);
                openRouterKeys.put(hash, data);
                a = new Reply(201, Map.of("data", Map.of("hash", hash, "name", data.get("name"), "usage", 0,
                        "limit_remaining", data.get("limit") == null ? 0 : data.get("limit")), "key", key));
            }
        } else if (ex.method().equals("DELETE") && path.startsWith("/openrouter/api/v1/keys/")) {
            String hash = path.substring("/openrouter/api/v1/keys/".length());
            a = openRouterKeys.remove(hash) != null && openRouterDeleted.add(hash)
                    ? new Reply(200, Map.of("deleted", true))
                    : new Reply(404, Map.of("error", Map.of("code", 404, "message", "no such key")));
        } else {
            a = new Reply(405, Map.of("error", Map.of("code", 405, "message", "not allowed")));
        }
        if (a.status() >= 300) {
            refusals.add(path + " " + a.status() + " " + a.body());
        }
        return HttpStub.Answer.json(a.status(), JSON.writeValueAsString(a.body()));
    }

    /**
     * Okta: service app {@code clientId} authenticates with private_key_jwt, its keys at
     * {@code jwksUrl}; its tokens are recorded under {@code clientId}.
     */
    public FakeProviders oktaApp(String clientId, Supplier<String> jwksOfApp) {
        oktaApps.put(clientId, jwksOfApp);
        return this;
    }

    private final Map<String, Supplier<String>> oktaApps = new ConcurrentHashMap<>();
    private final Set<String> oktaJti = ConcurrentHashMap.newKeySet();

    private Reply okta(HttpStub.Request ex, byte[] body) {
        Map<String, String> f = form(body);
        if (!"client_credentials".equals(f.get("grant_type"))
                || !"urn:ietf:params:oauth:client-assertion-type:jwt-bearer".equals(f.get("client_assertion_type"))) {
            return error(400, "invalid_request", "client_credentials with private_key_jwt expected");
        }
        if (!"llm:infer".equals(f.get("scope"))) {
            return error(400, "invalid_scope", "The authorization server does not support the requested scope");
        }
        try {
            SignedJWT jwt = SignedJWT.parse(f.get("client_assertion"));
            JWTClaimsSet c = jwt.getJWTClaimsSet();
            String client = c.getIssuer();
            Supplier<String> keys = oktaApps.get(client);
            if (keys == null || !client.equals(c.getSubject())) {
                return error(401, "invalid_client", "iss and sub must be a registered client_id");
            }
            var k = JWKSet.parse(keys.get()).getKeyByKeyId(jwt.getHeader().getKeyID());
            if (k == null || !jwt.verify(new com.nimbusds.jose.crypto.ECDSAVerifier(k.toECKey()))) {
                return error(401, "invalid_client", "The client_assertion signature is invalid");
            }
            long now = Instant.now().getEpochSecond();
            long exp = c.getExpirationTime().getTime() / 1000;
            if (!c.getAudience().contains(url("/okta/oauth2/default/v1/token")) || exp <= now
                    || exp - c.getIssueTime().getTime() / 1000 > 3600) {
                return error(401, "invalid_client", "The client_assertion audience or lifetime is invalid");
            }
            if (c.getJWTID() == null || !oktaJti.add(c.getJWTID())) {
                return error(401, "invalid_client", "The client_assertion token has already been used (jti)");
            }
            return mint("okta", client, "eyJraWQiOiJva3RhIn0.okta-");
        } catch (Exception e) {
            return error(401, "invalid_client", "The client_assertion is malformed");
        }
    }

    /** OpenRouter federation: {@code policy} admits {@code subject}. */
    public FakeProviders openRouterPolicy(String policy, String subject) {
        openRouterPolicies.put(policy, subject);
        return this;
    }

    public static final String OPENROUTER_AUD = "https://openrouter.ai";
    private final Map<String, String> openRouterPolicies = new ConcurrentHashMap<>();

    private Reply openRouterFederation(HttpStub.Request ex, byte[] body) {
        Map<String, String> f = form(body);
        if (!"urn:ietf:params:oauth:grant-type:token-exchange".equals(f.get("grant_type"))
                || !"urn:ietf:params:oauth:token-type:jwt".equals(f.get("subject_token_type"))) {
            return error(400, "unsupported_grant_type", "token exchange of a jwt expected");
        }
        String[] why = new String[1];
        JWTClaimsSet c = verify(f.get("subject_token"), OPENROUTER_AUD, why);
        if (c == null) {
            return error(400, "invalid_grant", why[0]);
        }
        if (!c.getSubject().equals(openRouterPolicies.get(f.get("federation_policy_id")))) {
            return error(400, "invalid_grant", "federation policy does not admit " + c.getSubject());
        }
        long keep = expiresIn;
        expiresIn = Math.min(expiresIn, 900);
        try {
            return mint("openrouter-federation", c.getSubject(), "eyJhbGciOiJFUzI1NiJ9.or-");
        } finally {
            expiresIn = keep;
        }
    }

    /** AWS: {@code roleArn}'s trust policy lets {@code subject} (the token's sub) assume it. */
    public FakeProviders awsRole(String roleArn, String subject) {
        awsRoles.put(roleArn, subject);
        return this;
    }

    public static final String AWS_AUD = "sts.amazonaws.com";
    private final Map<String, String> awsRoles = new ConcurrentHashMap<>();
    /** Session credentials issued: access key id → {secret, session token, subject, expiration}. */
    private final Map<String, String[]> awsSessions = new ConcurrentHashMap<>();

    private HttpStub.Answer awsSts(HttpStub.Request ex) throws IOException {
        Map<String, String> f = form(ex.bytes());
        int status;
        String xml;
        String[] why = new String[1];
        JWTClaimsSet c = f.get("WebIdentityToken") == null ? null : verify(f.get("WebIdentityToken"), AWS_AUD, why);
        long duration = f.get("DurationSeconds") == null ? 3600 : Long.parseLong(f.get("DurationSeconds"));
        if (!"AssumeRoleWithWebIdentity".equals(f.get("Action")) || !"2011-06-15".equals(f.get("Version"))) {
            status = 400;
            xml = awsError("InvalidAction", "unknown action");
        } else if (c == null) {
            status = 400;
            xml = awsError("InvalidIdentityToken", why[0] == null ? "no token" : why[0]);
        } else if (!c.getSubject().equals(awsRoles.get(f.get("RoleArn")))) {
            status = 403;
            xml = awsError("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity");
        } else if (duration < 900 || duration > 43200) {
            status = 400;
            xml = awsError("ValidationError", "DurationSeconds out of range");
        } else {
            String id = "ASIA" + token("").substring(0, 16).toUpperCase(java.util.Locale.ROOT);
            String secret = token("");
            String session = token("FwoGZXIvYXdzE");
            Instant exp = Instant.now().plusSeconds(Math.min(duration, expiresIn)).truncatedTo(java.time.temporal.ChronoUnit.SECONDS);
            awsSessions.put(id, new String[] {secret, session, c.getSubject(), exp.toString()});
            status = 200;
            xml = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                    + "<AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>" + c.getSubject()
                    + "</SubjectFromWebIdentityToken><Credentials><AccessKeyId>" + id + "</AccessKeyId><SecretAccessKey>"
                    + secret + "</SecretAccessKey><SessionToken>" + session + "</SessionToken><Expiration>" + exp
                    + "</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        }
        if (status != 200) {
            refusals.add("/aws " + status + " " + xml);
        }
        return new HttpStub.Answer(status, xml, Map.of("Content-Type", "text/xml"));
    }

    private static String awsError(String code, String message) {
        return "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>" + code
                + "</Code><Message>" + message.replace("<", "&lt;") + "</Message></Error><RequestId>r-1</RequestId>"
                + "</ErrorResponse>";
    }

    /**
     * Whom a Bedrock API key works for, as Bedrock checks it: decoded, an unexpired presigned
     * CallWithBearerToken of the bedrock service whose SigV4 signature verifies with the session's
     * secret; null when it does not.
     */
    public String bedrockKeySubject(String apiKey) {
        if (!apiKey.startsWith("bedrock-api-key-")) {
            return null;
        }
        String url = new String(java.util.Base64.getDecoder().decode(apiKey.substring(16)), StandardCharsets.US_ASCII);
        if (!url.startsWith("bedrock.amazonaws.com/?") || !url.endsWith("&Version=1")) {
            return null;
        }
        Map<String, String> q = form(url.substring(url.indexOf('?') + 1, url.length() - "&Version=1".length())
                .getBytes(StandardCharsets.US_ASCII));
        String cred = q.getOrDefault("X-Amz-Credential", "");
        String[] parts = cred.split("/");
        if (parts.length != 5 || !parts[3].equals("bedrock") || !"CallWithBearerToken".equals(q.get("Action"))) {
            return null;
        }
        String[] session = awsSessions.get(parts[0]);
        if (session == null || !session[1].equals(q.get("X-Amz-Security-Token"))) {
            return null;
        }
        Instant signed = java.time.LocalDateTime.parse(q.get("X-Amz-Date"),
                java.time.format.DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'")).toInstant(java.time.ZoneOffset.UTC);
        long expires = Long.parseLong(q.get("X-Amz-Expires"));
        if (Instant.now().isAfter(signed.plusSeconds(expires)) || signed.plusSeconds(expires).isAfter(
                Instant.parse(session[3]).plusSeconds(1))) {
            return null;
        }
        String again = io.keywarden.issuer.federation.aws.SigV4.presignQuery("POST", "bedrock.amazonaws.com", "/",
                Map.of("Action", "CallWithBearerToken"), parts[0], session[0].getBytes(StandardCharsets.US_ASCII), session[1],
                parts[2], "bedrock", signed, expires);
        String sig = again.substring(again.indexOf("X-Amz-Signature=") + 16);
        return sig.equals(q.get("X-Amz-Signature")) ? session[2] : null;
    }

    /** The live OpenRouter key whose value is {@code key}, or null. */
    public Map<String, Object> openRouterKey(String key) {
        return openRouterKeys.values().stream().filter(m -> key.equals(m.get("key"))).findFirst().orElse(null);
    }

    /** The tokens minted for {@code subject} by {@code provider}, oldest first. */
    public List<String> tokensOf(String provider, String subject) {
        synchronized (minted) {
            return minted.stream().filter(m -> m.provider().equals(provider) && m.subject().equals(subject))
                    .map(Minted::token).toList();
        }
    }

    @Override
    public void close() {
        if (server != null) {
            server.close();
        }
    }
}
