package io.keywarden.issuer.vault;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.Lease;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import io.keywarden.testkit.FixedIdentity;
import io.keywarden.testkit.HttpStub;
import io.keywarden.testkit.HttpStub.Answer;
import io.keywarden.testkit.Policies;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The Vault issuer's token bookkeeping against a stub that answers as Vault's JWT auth and the
 * OpenAI engine do (and checks what it receives the way they do: the role and the JWT at login,
 * the token of the login on every later call): one login per workload and role while the token has
 * half its life left, a lease revoked with the token that holds it, a refused token dropped, the
 * tokens carried across a handover. The real engine is in {@code RealChainIT}.
 */
class VaultIssuerTest {
    static final String JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    private HttpStub vault;
    private final AtomicInteger logins = new AtomicInteger();
    private final AtomicInteger leases = new AtomicInteger();
    /** Tokens Vault would honour, and the lease ids each holds. */
    private final Map<String, List<String>> tokens = new ConcurrentHashMap<>();
    private final List<String> calls = new CopyOnWriteArrayList<>();
    private volatile boolean refuseReads;
    private Policy policy;

    @BeforeEach
    void start() throws Exception {
        vault = HttpStub.start().on("/v1/", this::answer);
        policy = Policies.of("""
                keys:
                  openai: {vault: {role: "r-{workload}", path: "openai/creds/{workload}", ttl: 60s}}
                workloads:
                  - {name: alice, spiffeId: "spiffe://t/alice", selectors: ["unix:uid:1001"], keys: [openai]}
                  - {name: bob, spiffeId: "spiffe://t/bob", selectors: ["unix:uid:1002"], keys: [openai]}
                """);
    }

    @AfterEach
    void stop() {
        vault.close();
    }

    private Answer answer(HttpStub.Request x) {
        String path = x.path().substring("/v1/".length());
        String token = x.header("X-Vault-Token");
        String body = x.body();
        calls.add(x.method() + " " + path + (token == null ? "" : " as " + token));
        if (path.equals("auth/jwt/login") && x.method().equals("POST")) {
            boolean ok = body.contains("\"jwt\":\"" + JWT + "\"") && body.matches(".*\"role\":\"r-(alice|bob)\".*");
            String t = "hvs.t" + logins.incrementAndGet();
            if (!ok) {
                return Answer.json(400, "{\"errors\":[\"bad login\"]}");
            }
            tokens.put(t, new CopyOnWriteArrayList<>());
            return Answer.json(200, "{\"auth\":{\"client_token\":\"" + t + "\",\"lease_duration\":3600}}");
        }
        if (token == null || !tokens.containsKey(token)) {
            return Answer.json(403, "{\"errors\":[\"permission denied\"]}");
        }
        if (path.startsWith("openai/creds/") && x.method().equals("GET")) {
            if (refuseReads) {
                tokens.remove(token);
                return Answer.json(403, "{\"errors\":[\"permission denied\"]}");
            }
            String id = "openai/creds/" + path.substring("openai/creds/".length()) + "/l" + leases.incrementAndGet();
            tokens.get(token).add(id);
            return Answer.json(200, "{\"lease_id\":\"" + id + "\",\"lease_duration\":60,\"renewable\":false,\"data\":"
                    + "{\"api_key\":\"sk-test-" + leases.get() + "\",\"api_key_id\":\"key_" + leases.get() + "\"}}");
        }
        if (path.startsWith("sys/leases/revoke/") && x.method().equals("PUT")) {
            boolean held = tokens.get(token).remove(path.substring("sys/leases/revoke/".length()));
            return held ? Answer.empty(204) : Answer.json(403, "{\"errors\":[\"permission denied\"]}");
        }
        if (path.equals("auth/token/revoke-self")) {
            tokens.remove(token);
            return Answer.empty(204);
        }
        if (path.equals("auth/token/lookup-self")) {
            return Answer.json(200, "{\"data\":{}}");
        }
        return Answer.json(404, "{\"errors\":[]}");
    }

    private VaultIssuer issuer() throws IssuerException {
        VaultConnection c = new VaultConnection(vault.uri(""), "", "jwt",
                Optional.empty(), Duration.ofSeconds(2));
        return new VaultIssuer(new VaultType.Spec("bao", c, "vault"), new FixedIdentity(JWT, Instant.now().plusSeconds(600)),
                Clock.systemUTC());
    }

    private Workload w(String name) {
        return policy.workload(name).orElseThrow();
    }

    private KeySpec key() {
        return policy.keys().get("openai");
    }

    @Test
    void oneLoginPerWorkloadAndRoleAndALeaseRevokedWithItsToken() throws Exception {
        VaultIssuer v = issuer();
        Lease a1 = v.issue(w("alice"), key(), null);
        Lease a2 = v.issue(w("alice"), key(), null);
        Lease b1 = v.issue(w("bob"), key(), null);
        assertEquals(2, logins.get(), "alice's token is reused; bob logs in as bob: " + calls);
        assertTrue(a1.key().expiresAt().isBefore(Instant.now().plusSeconds(61)), "the lease's 60 s, not the token's hour");
        assertEquals(Optional.of("key_1"), a1.providerKeyId());
        v.revoke(a1);
        assertTrue(calls.contains("PUT sys/leases/revoke/" + a1.leaseId() + " as hvs.t1"), calls.toString());
        v.revoke(b1);
        assertTrue(calls.contains("PUT sys/leases/revoke/" + b1.leaseId() + " as hvs.t2"), calls.toString());
        assertFalse(calls.stream().anyMatch(c -> c.startsWith("PUT auth/token/revoke-self")),
                "a workload's current login is kept for its next key");
        v.revoke(a2);
        assertEquals(List.of(), tokens.get("hvs.t1"));
    }

    @Test
    void aRefusedTokenIsDroppedAndTheNextIssueLogsInAgain() throws Exception {
        VaultIssuer v = issuer();
        v.issue(w("alice"), key(), null);
        refuseReads = true;
        IssuerException e = assertThrows(IssuerException.class, () -> v.issue(w("alice"), key(), null));
        assertEquals(403, e.httpStatus());
        assertFalse(e.getMessage().contains("hvs."), "no token in a message: " + e.getMessage());
        refuseReads = false;
        v.issue(w("alice"), key(), null);
        assertEquals(2, logins.get(), calls.toString());
    }

    @Test
    void theTokensTravelInAHandoverAndRevokeThere() throws Exception {
        VaultIssuer before = issuer();
        Lease l = before.issue(w("alice"), key(), null);
        VaultIssuer after = issuer();
        after.adoptHandoverState(before.handoverState());
        after.revoke(l);
        assertTrue(calls.contains("PUT sys/leases/revoke/" + l.leaseId() + " as hvs.t1"), calls.toString());
        after.issue(w("alice"), key(), null);
        assertEquals(1, logins.get(), "the successor continues with the login it inherited");
        assertThrows(IssuerException.class, () -> issuer().adoptHandoverState("{not json".getBytes(StandardCharsets.UTF_8)));
    }
}
