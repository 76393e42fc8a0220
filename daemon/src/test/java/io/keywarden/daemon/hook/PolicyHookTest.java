package io.keywarden.daemon.hook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.dev.DevIssuer;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import io.keywarden.testkit.HttpStub;
import io.keywarden.testkit.Policies;
import io.vertx.core.Vertx;
import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The OPA hook against a stub that answers as OPA's data API does: the input document it is
 * asked with, each answer's verdict, and failing closed or open on every way OPA can fail.
 */
class PolicyHookTest {
    private HttpStub opa;
    private Vertx vertx;
    private final AtomicReference<String> asked = new AtomicReference<>();
    private final AtomicReference<String> answer = new AtomicReference<>("{\"result\":true}");
    private final AtomicReference<Integer> status = new AtomicReference<>(200);
    private volatile CountDownLatch hold = new CountDownLatch(0);
    private Workload alice;
    private Policy policy;

    @BeforeEach
    void start() throws Exception {
        opa = HttpStub.start().on("/v1/data/keywarden/allow", r -> {
            asked.set(r.body());
            hold.await(10, TimeUnit.SECONDS);
            return HttpStub.Answer.json(status.get(), answer.get());
        });
        vertx = Vertx.vertx();
        Policy p = Policies.of("""
                keys: {openai: {}}
                workloads:
                  - {name: alice, spiffeId: "spiffe://t/alice", selectors: ["unix:uid:1001"], keys: [openai]}
                """);
        policy = p;
        alice = p.workload("alice").orElseThrow();
    }

    @AfterEach
    void stop() throws Exception {
        hold.countDown();
        opa.close();
        vertx.close().await(5, TimeUnit.SECONDS);
    }

    private PolicyHook hook(Duration timeout, boolean failClosed) {
        return new PolicyHook(vertx.createHttpClient(), new HookSettings(opa.uri("/v1/data/keywarden/allow"), timeout,
                failClosed));
    }

    private PolicyHook.Verdict decide(PolicyHook h) throws Exception {
        return h.decide(alice, "openai", "gpt-4o", null, "request").toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @Test
    void itAsksWithTheWorkloadTheKeyTheModelAndTheAction() throws Exception {
        assertTrue(decide(hook(Duration.ofSeconds(5), true)).allowed());
        JsonNode in = new ObjectMapper().readTree(asked.get()).get("input");
        assertEquals("spiffe://t/alice", in.get("spiffe_id").asText());
        assertEquals("alice", in.get("workload").asText());
        assertEquals("openai", in.get("key").asText());
        assertEquals("gpt-4o", in.get("model").asText());
        assertEquals("request", in.get("action").asText());
        assertTrue(in.get("process").isNull(), "no process: the hook is told so, not given a guess");
    }

    @Test
    void aFalseResultDenies() throws Exception {
        answer.set("{\"result\":false}");
        PolicyHook.Verdict v = decide(hook(Duration.ofSeconds(5), false));
        assertFalse(v.allowed(), "a decision is not a failure: failing open does not apply");
        assertTrue(v.reason().startsWith("denied by the policy hook"), v.reason());
    }

    @Test
    void everyFailureFailsClosedOrOpenAsConfigured() throws Exception {
        for (String[] c : new String[][] {{"200", "{}", "undefined"}, {"200", "{\"result\":\"yes\"}", "not a boolean"},
                {"200", "<html>", "not JSON"}, {"500", "{\"result\":true}", "HTTP 500"}}) {
            status.set(Integer.parseInt(c[0]));
            answer.set(c[1]);
            PolicyHook.Verdict closed = decide(hook(Duration.ofSeconds(5), true));
            assertFalse(closed.allowed(), c[2]);
            assertTrue(closed.reason().startsWith("policy hook failed closed") && closed.reason().contains(c[2]),
                    closed.reason());
            PolicyHook.Verdict open = decide(hook(Duration.ofSeconds(5), false));
            assertTrue(open.allowed(), c[2]);
            assertTrue(open.reason().startsWith("policy hook failed open"), open.reason());
        }
    }

    @Test
    void noAnswerWithinTheTimeoutFailsAsConfigured() throws Exception {
        hold = new CountDownLatch(1);
        PolicyHook.Verdict v = decide(hook(Duration.ofMillis(100), true));
        assertFalse(v.allowed());
        assertTrue(v.reason().contains("no answer within 100 ms"), v.reason());
        hold.countDown();
    }

    @Test
    void aHookedIssuerIssuesOnlyWhatTheHookAllows() throws Exception {
        DevIssuer dev = new DevIssuer("dev", Duration.ofMinutes(5), Clock.systemUTC());
        HookedIssuer hooked = new HookedIssuer(dev, hook(Duration.ofSeconds(5), true), Duration.ofSeconds(5));
        var key = policy.keys().get("openai");
        answer.set("{\"result\":false}");
        IssuerException e = assertThrows(IssuerException.class, () -> hooked.issue(alice, key, null));
        assertEquals(IssuerException.Kind.REFUSED, e.kind());
        assertEquals(403, e.httpStatus());
        assertEquals("issue", new ObjectMapper().readTree(asked.get()).get("input").get("action").asText());
        answer.set("{\"result\":true}");
        assertTrue(hooked.issue(alice, key, null).key().fingerprint().startsWith("sha256:"));
    }
}
