package io.keywarden.daemon.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.SelectorAttestor;
import io.keywarden.daemon.net.HostPort;
import io.keywarden.daemon.guard.BreachKind;
import io.keywarden.daemon.guard.GatewayTally;
import io.keywarden.daemon.guard.GuardEngine;
import io.keywarden.daemon.guard.GuardListener;
import io.keywarden.daemon.net.ChannelFd;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.delivery.AccessDecider;
import io.keywarden.delivery.AccessListener;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import io.keywarden.testkit.HttpStub;
import io.keywarden.testkit.Policies;
import io.keywarden.testkit.MemoryKeySource;
import io.vertx.core.Vertx;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The gateway's request pipeline in one process: this JVM is the caller (found by its socket, as
 * any caller is, and attested from /proc by its uid), the credential comes from a key source stub,
 * the upstream is a stub that checks the credential it receives. Each stage's outcome: the key
 * injected and never relayed back, a model outside the allowlist refused before the upstream, an
 * unknown key, a credential the key source cannot give. The same stages with real processes of
 * other uids are {@code GatewayIT}'s and {@code GatewayAttackIT}'s.
 */
class GatewayPipelineTest {
    static final String KEY = "sk-pipeline-0123456789abcdef";
    static final ObjectMapper JSON = new ObjectMapper();
    private HttpStub upstream;
    private final MemoryKeySource keys = new MemoryKeySource().serveAll(KEY);
    private Vertx vertx;
    private ExecutorService blocking;
    private ScheduledExecutorService timer;
    private int port;
    private GatewayServer gateway;
    private final HttpClient client = HttpClient.newHttpClient();

    @BeforeEach
    void start() throws Exception {
        upstream = HttpStub.start().on("/v1/chat/completions", r -> HttpStub.Answer.json(200, "{\"id\":\"c1\","
                + "\"model\":\"gpt-4.1-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,"
                + "\"total_tokens\":8}}")).on("/base/", r -> HttpStub.Answer.json(200, "{\"usage\":{\"prompt_tokens\":1,"
                + "\"completion_tokens\":1}}"));
        int uid = (int) new com.sun.security.auth.module.UnixSystem().getUid();
        Policy policy = Policies.of("""
                keys: {openai: {}, based: {}}
                workloads:
                  - name: me
                    spiffeId: spiffe://t/me
                    selectors: ["unix:uid:%d"]
                    keys: [openai, based]
                    guard: {models: ["gpt-4.1-mini"]}
                """.formatted(uid));
        blocking = Executors.newFixedThreadPool(2);
        timer = Executors.newSingleThreadScheduledExecutor();
        AccessDecider decider = new AccessDecider(() -> policy, new SelectorAttestor(ProcAttestor.system(), () -> policy),
                keys, AccessListener.NONE, Clock.systemUTC(), Duration.ofSeconds(5), blocking, timer);
        GuardEngine guard = new GuardEngine(Clock.systemUTC(), new GuardListener() {
            @Override
            public void breach(Workload w, BreachKind kind, String observed, String limit, String action, String sensor) {
            }

            @Override
            public void revoke(Workload w, String reason) {
            }

            @Override
            public void block(Workload w, String reason, Instant until) {
            }

            @Override
            public void usage(String workload, Instant minute, long in, long out, long requests, Map<String, Long> models) {
            }
        });
        // A port of its own (port 0 would give one server: Vert.x shares only a port it is given).
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        GatewaySettings config = new GatewaySettings(Optional.of(new HostPort("127.0.0.1", port)), Optional.empty(), Map.of(),
                Optional.empty(), GatewaySettings.DEFAULT_MAX_BODY, Duration.ofMinutes(1), Optional.empty());
        GatewaySettings.Upstream up = new GatewaySettings.Upstream(upstream.uri(""), GatewaySettings.UpstreamAuth.BEARER);
        // An upstream under a base path (trailing slashes trimmed), as an Azure deployment or a proxy's prefix.
        GatewaySettings.Upstream based = new GatewaySettings.Upstream(upstream.uri("/base//"),
                GatewaySettings.UpstreamAuth.BEARER);
        // Two event loops, as on a 2-CPU node: a connection's requests stay on its loop.
        vertx = Vertx.vertx(ChannelFd.options(2, 2));
        gateway = GatewayServer.start(vertx, config, decider, () -> policy, k -> Optional.of(k.name().equals("based") ? based : up), guard, guard,
                new GatewayTally(), null, new Metrics(), blocking, 2, null);
        assertEquals(port, gateway.port().orElseThrow());
    }

    @AfterEach
    void stop() throws Exception {
        gateway.close();
        vertx.close().await(5, TimeUnit.SECONDS);
        upstream.close();
        blocking.shutdownNow();
        timer.shutdownNow();
    }

    private HttpResponse<String> post(String path, String model) throws Exception {
        return client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .header("Authorization", "Bearer placeholder").header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"" + model + "\",\"messages\":[]}")).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private List<String> upstreamAuth() {
        return upstream.requests().stream().map(r -> String.valueOf(r.header("Authorization"))).toList();
    }

    private static String code(HttpResponse<String> r) throws Exception {
        return JSON.readTree(r.body()).path("error").path("code").asText();
    }

    @Test
    void theCredentialIsInjectedUpstreamAndNeverRelayedBack() throws Exception {
        HttpResponse<String> r = post("/openai/v1/chat/completions", "gpt-4.1-mini");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals(List.of("Bearer " + KEY), upstreamAuth(), "the placeholder replaced by the workload's key");
        JsonNode body = JSON.readTree(r.body());
        assertEquals(8, body.path("usage").path("total_tokens").asInt());
        assertFalse(r.body().contains(KEY) || r.headers().map().toString().contains(KEY), "the key never comes back");
    }

    @Test
    void theUpstreamsBasePathPrefixesThePathAndTheQueryIsForwardedAsSent() throws Exception {
        HttpResponse<String> r = post("/based/v1/chat/completions?api-version=2024-10-21&x=%20y", "gpt-4.1-mini");
        assertEquals(200, r.statusCode(), r.body());
        HttpStub.Request got = upstream.requests().get(upstream.requests().size() - 1);
        assertEquals("/base/v1/chat/completions", got.path());
        assertEquals("api-version=2024-10-21&x=%20y", got.query());
        assertEquals("127.0.0.1:" + upstream.port(), got.header("Host"));
        assertEquals("Bearer " + KEY, got.header("Authorization"));
    }

    @Test
    void connectionsAreSpreadOverTheEventLoopsAndEachIsServedOnItsOwn() throws Exception {
        String body = "{\"model\":\"gpt-4.1-mini\",\"messages\":[]}";
        String request = "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer x\r\n"
                + "Content-Type: application/json\r\nContent-Length: " + body.length() + "\r\n\r\n" + body;
        List<java.net.Socket> open = new java.util.ArrayList<>();
        try {
            // Four connections open at once (the listener's servers take new ones in turn), two requests each.
            for (int i = 0; i < 4; i++) {
                java.net.Socket so = new java.net.Socket(java.net.InetAddress.getLoopbackAddress(), port);
                so.setSoTimeout(10_000);
                open.add(so);
            }
            for (int round = 0; round < 2; round++) {
                for (java.net.Socket so : open) {
                    so.getOutputStream().write(request.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                    so.getOutputStream().flush();
                    String answer = readAnswer(so.getInputStream());
                    assertTrue(answer.startsWith("HTTP/1.1 200"), answer.lines().findFirst().orElse(""));
                    assertFalse(answer.contains(KEY), "the key never comes back");
                }
            }
        } finally {
            for (java.net.Socket so : open) {
                so.close();
            }
        }
        assertEquals(8, upstreamAuth().size());
        assertTrue(upstreamAuth().stream().allMatch(("Bearer " + KEY)::equals));
        assertEquals(2, gateway.loopsServing().size(), "both event loops took connections: " + gateway.loopsServing());
    }

    /** One HTTP/1.1 answer with a Content-Length body, read off a keep-alive connection. */
    private static String readAnswer(java.io.InputStream in) throws java.io.IOException {
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
                throw new java.io.EOFException("the gateway closed the connection: " + head);
            }
            head.append((char) b);
        }
        int length = 0;
        for (String line : head.toString().split("\r\n")) {
            if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) {
                length = Integer.parseInt(line.substring(15).trim());
            }
        }
        return head + new String(in.readNBytes(length), java.nio.charset.StandardCharsets.UTF_8);
    }

    @Test
    void aModelOutsideTheAllowlistNeverReachesTheUpstream() throws Exception {
        HttpResponse<String> r = post("/openai/v1/chat/completions", "gpt-5-pro");
        assertEquals(403, r.statusCode(), r.body());
        assertEquals("model_not_allowed", code(r));
        assertEquals(List.of(), upstreamAuth());
    }

    @Test
    void aKeyThePolicyDoesNotHaveIsNotFound() throws Exception {
        HttpResponse<String> r = post("/anthropic/v1/messages", "gpt-4.1-mini");
        assertEquals(404, r.statusCode(), r.body());
        assertEquals("no_such_key", code(r));
        assertTrue(upstreamAuth().isEmpty());
    }

    @Test
    void aCredentialTheIssuerCannotGiveIsUnavailableNotAGuess() throws Exception {
        keys.failAll("vault is sealed");
        HttpResponse<String> r = post("/openai/v1/chat/completions", "gpt-4.1-mini");
        assertEquals(503, r.statusCode(), r.body());
        assertEquals("credential_unavailable", code(r));
        assertTrue(upstreamAuth().isEmpty());
    }
}
