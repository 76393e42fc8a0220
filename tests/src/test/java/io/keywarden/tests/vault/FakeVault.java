package io.keywarden.tests.vault;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.source.ImmutableJWKSet;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import io.keywarden.testkit.HttpStub;
import io.keywarden.testkit.HttpStub.Answer;
import io.keywarden.tests.support.TestKeys;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * Vault/OpenBao for tests, following contracts/vault-openbao.md: JWT auth with real signature
 * verification against the identity provider's JWKS and role binding on sub and aud; the OpenAI
 * engine's creds as keywarden's engine (deploy/openbao/openai-engine) answers them: non-renewable
 * leases, a requested ttl honoured up to max_ttl and otherwise the role's ttl with a warning, the
 * key's own expiry at OpenAI ({@code api_key_expires_at}, the lease plus a minute); leases that die with
 * their token; revoke, renew and lookup; and injectable failures.
 */
public final class FakeVault implements AutoCloseable {
    /** What {@code sys/health} answers (Vault's codes: 200 active, 429 standby, 472 DR secondary, 473 performance standby …). */
    public volatile int healthStatus = 200;

    public enum Failure { NONE, SEALED, ENGINE_ERROR, BAD_TOKEN, MALFORMED }

    record Role(String name, String boundSubject, String boundAudience, Duration tokenTtl, Duration ttl, Duration maxTtl) {
    }

    record Token(String id, String role, Instant expires, boolean[] revoked) {
        boolean alive(Instant now) {
            return !revoked[0] && now.isBefore(expires);
        }
    }

    public record LeaseRec(String id, String role, Token token, Instant expires, String fingerprint, boolean[] revoked) {
        public boolean alive(Instant now) {
            return !revoked[0] && now.isBefore(expires) && token.alive(now);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private final Supplier<String> jwks;
    private final Map<String, Role> roles = new ConcurrentHashMap<>();
    private final Map<String, Token> tokens = new ConcurrentHashMap<>();
    public final Map<String, LeaseRec> leases = new ConcurrentHashMap<>();
    public final AtomicInteger logins = new AtomicInteger();
    public final AtomicInteger reads = new AtomicInteger();
    public final AtomicInteger revokes = new AtomicInteger();
    public final AtomicInteger tokenRevokes = new AtomicInteger();
    public final List<String> revokedLeases = java.util.Collections.synchronizedList(new ArrayList<>());
    public volatile Failure failure = Failure.NONE;
    public volatile Duration delay = Duration.ZERO;
    private HttpStub server;
    private int port;

    /** {@code jwks} gives the identity provider's JWKS JSON, as Vault fetches its jwks_url. */
    public FakeVault(Supplier<String> jwks) {
        this.jwks = jwks;
    }

    public FakeVault role(String name, String boundSubject, String boundAudience, Duration tokenTtl, Duration ttl) {
        roles.put(name, new Role(name, boundSubject, boundAudience, tokenTtl, ttl, Duration.ofHours(24)));
        return this;
    }

    public synchronized FakeVault start() throws IOException {
        server = HttpStub.startOn(port).on("/", this::answer);
        port = server.port();
        return this;
    }

    /** Connection refused from now on, until {@link #start()} again (same port). */
    public synchronized void stop() {
        if (server != null) {
            server.close();
            server = null;
        }
    }

    @Override
    public void close() {
        stop();
    }

    public String address() {
        return "http://127.0.0.1:" + port;
    }

    public List<LeaseRec> liveLeases() {
        Instant now = Instant.now();
        return leases.values().stream().filter(l -> l.alive(now)).toList();
    }

    private Answer answer(HttpStub.Request ex) throws IOException, InterruptedException {
        if (!delay.isZero()) {
            Thread.sleep(delay.toMillis());  // an injected slow Vault
        }
        String path = ex.path();
        String method = ex.method();
        String body = ex.body();
        if (failure == Failure.SEALED) {
            return Answer.json(503, errors("Vault is sealed"));
        }
        if (failure == Failure.MALFORMED) {
            return Answer.json(200, "{\"lease_id\": \"x\", \"data\": {");
        }
        if (path.equals("/v1/sys/health")) {
            return Answer.json(healthStatus, "{\"initialized\":true,\"sealed\":false,\"standby\":" + (healthStatus != 200) + "}");
        }
        if (path.matches("/v1/auth/[^/]+/login") && method.equals("POST")) {
            return login(JSON.readTree(body));
        } else if (path.startsWith("/v1/openai/creds/")) {
            if (!method.equals("GET")) {
                return Answer.json(405, errors("1 error occurred:\n\t* unsupported operation"));
            }
            return creds(ex, path.substring("/v1/openai/creds/".length()), ex.query());
        } else if (path.equals("/v1/sys/leases/revoke") && (method.equals("PUT") || method.equals("POST"))) {
            // As OpenBao: the body form needs sys/leases/revoke, which no workload policy grants.
            return Answer.json(403, errors("1 error occurred:\n\t* permission denied"));
        } else if (path.startsWith("/v1/sys/leases/revoke/") && (method.equals("PUT") || method.equals("POST"))) {
            Token t = token(ex);
            String leaseId = path.substring("/v1/sys/leases/revoke/".length());
            // The workload policy setup.sh writes: update on sys/leases/revoke/openai/creds/<role>/*.
            if (t == null || !leaseId.startsWith("openai/creds/" + t.role() + "/")) {
                return Answer.json(403, errors("1 error occurred:\n\t* permission denied"));
            }
            LeaseRec l = leases.get(leaseId);
            if (l != null && !l.revoked()[0]) {
                l.revoked()[0] = true;
                revokes.incrementAndGet();
                revokedLeases.add(l.id());
            }
            return Answer.empty(204);
        } else if (path.equals("/v1/auth/token/lookup-self")) {
            Token t = token(ex);
            if (t == null) {
                return Answer.json(403, errors("permission denied"));
            }
            return Answer.json(200, "{\"data\":{\"ttl\":60}}");
        } else if (path.equals("/v1/sys/leases/renew")) {
            return Answer.json(400, errors("lease is not renewable"));
        } else if (path.equals("/v1/auth/token/revoke-self")) {
            Token t = token(ex);
            if (t == null) {
                return Answer.json(403, errors("permission denied"));
            }
            t.revoked()[0] = true;
            tokenRevokes.incrementAndGet();
            // A token's leases die with it, as in Vault.
            for (LeaseRec l : leases.values()) {
                if (l.token() == t && !l.revoked()[0]) {
                    l.revoked()[0] = true;
                    revokedLeases.add(l.id());
                }
            }
            return Answer.empty(204);
        } else {
            return Answer.json(404, errors("no handler for route \"" + path + "\""));
        }
    }

    private Token token(HttpStub.Request ex) {
        if (failure == Failure.BAD_TOKEN) {
            return null;
        }
        String id = ex.header("X-Vault-Token");
        Token t = id == null ? null : tokens.get(id);
        return t != null && t.alive(Instant.now()) ? t : null;
    }

    private Answer login(JsonNode req) {
        logins.incrementAndGet();
        Role role = roles.get(req.path("role").asText());
        if (role == null) {
            return Answer.json(400, errors("role \"" + req.path("role").asText() + "\" could not be found"));
        }
        try {
            DefaultJWTProcessor<SecurityContext> p = new DefaultJWTProcessor<>();
            p.setJWSKeySelector(new JWSVerificationKeySelector<>(JWSAlgorithm.ES256,
                    new ImmutableJWKSet<>(JWKSet.parse(jwks.get()))));
            DefaultJWTClaimsVerifier<SecurityContext> v = new DefaultJWTClaimsVerifier<>(role.boundAudience(),
                    new JWTClaimsSet.Builder().subject(role.boundSubject()).build(), Set.of("sub", "exp", "iat"));
            v.setMaxClockSkew(60);
            p.setJWTClaimsSetVerifier(v);
            p.process(req.path("jwt").asText(), null);
        } catch (Exception e) {
            return Answer.json(400, errors("error validating token: " + e.getMessage()));
        }
        String id = "hvs.fake" + UUID.randomUUID().toString().replace("-", "");
        tokens.put(id, new Token(id, role.name(), Instant.now().plus(role.tokenTtl()), new boolean[1]));
        ObjectNode auth = JSON.createObjectNode().put("client_token", id).put("accessor", UUID.randomUUID().toString())
                .put("lease_duration", role.tokenTtl().toSeconds()).put("renewable", true).put("token_type", "service")
                .put("orphan", true).put("entity_id", UUID.randomUUID().toString());
        auth.putArray("policies").add("default").add(role.name());
        auth.putArray("token_policies").add("default").add(role.name());
        auth.putObject("metadata").put("role", role.name());
        ObjectNode o = JSON.createObjectNode().put("request_id", UUID.randomUUID().toString()).put("lease_id", "")
                .put("renewable", false).put("lease_duration", 0);
        o.putNull("data");
        o.set("auth", auth);
        return Answer.json(200, o.toString());
    }

    private Answer creds(HttpStub.Request ex, String roleName, String query) {
        Token t = token(ex);
        if (t == null) {
            return Answer.json(403, errors("permission denied"));
        }
        Role role = roles.get(roleName);
        if (role == null) {
            return Answer.json(400, errors("role \"" + roleName + "\" does not exist"));
        }
        if (!t.role().equals(roleName)) {
            return Answer.json(403, errors("permission denied"));
        }
        if (failure == Failure.ENGINE_ERROR) {
            return Answer.json(500, errors("1 error occurred:\n\t* failed to create service account: OpenAI API error 502"));
        }
        reads.incrementAndGet();
        Duration ttl = role.ttl();
        String warning = null;
        if (query != null && query.startsWith("ttl=")) {
            Duration asked;
            try {
                asked = io.keywarden.policy.Durations.parse(query.substring(4));
            } catch (IllegalArgumentException e) {
                // Vault's field parser refuses a duration it cannot read
                return Answer.json(400, errors("error converting input " + query.substring(4) + " for field \"ttl\""));
            }
            if (asked.compareTo(role.maxTtl()) > 0) {
                warning = "the requested ttl " + asked + " exceeds the role's max_ttl: the role's ttl was used";
            } else if (!asked.isZero()) {
                ttl = asked;
            }
        }
        String key = TestKeys.random("sk-vault-", 60);
        String id = "openai/creds/" + roleName + "/" + UUID.randomUUID().toString().replace("-", "").substring(0, 24);
        leases.put(id, new LeaseRec(id, roleName, t, Instant.now().plus(ttl),
                io.keywarden.delivery.IssuedKey.fingerprint(key), new boolean[1]));
        ObjectNode o = JSON.createObjectNode().put("request_id", UUID.randomUUID().toString()).put("lease_id", id)
                .put("renewable", false).put("lease_duration", ttl.toSeconds());
        o.putObject("data").put("api_key", key).put("api_key_id", "key_" + id.substring(id.lastIndexOf('/') + 1, id.lastIndexOf('/') + 13))
                .put("service_account_id", "svc_acct_" + UUID.randomUUID().toString().substring(0, 8))
                .put("service_account", "keywarden-" + roleName)
                .put("api_key_expires_at", Instant.now().plus(ttl).plusSeconds(60).getEpochSecond());
        o.putNull("wrap_info");
        if (warning == null) {
            o.putNull("warnings");
        } else {
            o.putArray("warnings").add(warning);
        }
        o.putNull("auth");
        return Answer.json(200, o.toString());
    }

    private static String errors(String msg) {
        ObjectNode o = JSON.createObjectNode();
        o.putArray("errors").add(msg);
        return o.toString();
    }
}
