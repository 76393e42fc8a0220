package io.keywarden.tests.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.linux.Mounts;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Token budgets under concurrency and with answers whose usage cannot be read. A real
 * {@code keywarden dev} gateway in front of an upstream that bills the way OpenAI does (usage in
 * every complete answer, in a stream's last chunk only with {@code include_usage}, output capped by
 * {@code max_tokens}) and counts what it billed per workload; every workload has a budget of 1,000
 * tokens per hour. Each test prints the tokens billed against the budget and asserts they never
 * exceed it, or that what could not be metered was still charged.
 */
class BudgetIT {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int PROMPT = 30;
    static final int COMPLETION = 20;
    static final long BUDGET = 1000;
    static Path dir;
    static Path mnt;
    static int gw;
    static Daemon daemon;
    static Vertx vertx;
    static int upstreamPort;
    /** Tokens the upstream billed, by the bearer key's workload tag (the model name the test sends). */
    static final Map<String, AtomicLong> billed = new java.util.concurrent.ConcurrentHashMap<>();
    static String python;

    @BeforeAll
    static void start() throws Exception {
        Requirements.rootAndFuse();
        Await.clearOfWindowEdge(Duration.ofHours(1), Duration.ofMinutes(2));
        dir = Files.createTempDirectory("kw-budget-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        mnt = dir.resolve("mnt");
        python = Path.of("/usr/bin/python3").toRealPath().toString();
        vertx = Vertx.vertx();
        upstreamPort = vertx.createHttpServer().requestHandler(BudgetIT::upstream).listen(0, "127.0.0.1")
                .await(10, TimeUnit.SECONDS).actualPort();
        StringBuilder policy = new StringBuilder("keys:\n  openai: {}\nworkloads:\n");
        for (int uid = 1001; uid <= 1006; uid++) {
            policy.append("""
                      - name: w%d
                        spiffeId: spiffe://example.org/w%d
                        selectors: [unix:uid:%d]
                        keys: [openai]
                        guard:
                          budget: {tokensPerHour: %d}
                    """.formatted(uid, uid, uid, BUDGET));
        }
        Files.writeString(dir.resolve("policy.yaml"), policy.toString());
        gw = Ports.free();
        Files.writeString(dir.resolve("config.yaml"), """
                policy: policy.yaml
                issuers: {dev: {type: dev}}
                gateway:
                  listen: 127.0.0.1:%d
                  defaultMaxOutputTokens: 200
                  upstreams:
                    openai: "http://127.0.0.1:%d"
                """.formatted(gw, upstreamPort));
        daemon = Daemon.start(Map.of(), "dev", "--mount", mnt.toString(), "--policy", dir.resolve("policy.yaml").toString(),
                "--audit", dir.resolve("audit.jsonl").toString(), "--admin-socket", dir.resolve("admin/admin.sock")
                        .toString(), "--listen", "127.0.0.1:" + Ports.free(), "--config", dir.resolve("config.yaml").toString());
        daemon.awaitOut("gateway: http", 30);
    }

    @AfterAll
    static void stop() throws Exception {
        if (daemon != null) {
            assertEquals(0, daemon.stop());
        }
        if (vertx != null) {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
        if (mnt != null && Mounts.at(mnt).isPresent()) {
            Mounts.detach(mnt);
        }
        if (dir != null) {
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    /**
     * Bills like OpenAI: 30 prompt tokens, min(20, max_tokens) completion tokens, added to the
     * workload named by the request's {@code user} field. Answers after 300 ms (so concurrent
     * requests overlap); streams five chunks 40 ms apart, the usage chunk only when asked. Model
     * {@code cut}: the stream is cut after two chunks (an upstream error mid-stream, billed all the
     * same).
     */
    static void upstream(HttpServerRequest req) {
        req.body().onSuccess(b -> {
            JsonNode r;
            try {
                r = JSON.readTree(b.getBytes());
            } catch (java.io.IOException e) {
                req.response().setStatusCode(400).end();
                return;
            }
            String auth = String.valueOf(req.getHeader("authorization"));
            if (!auth.startsWith("Bearer sk-dev-")) {
                req.response().setStatusCode(401).end("{\"error\":{\"code\":\"invalid_api_key\"}}");
                return;
            }
            long out = Math.min(COMPLETION, r.path("max_tokens").asLong(Long.MAX_VALUE));
            billed.computeIfAbsent(r.path("user").asText(), k -> new AtomicLong()).addAndGet(PROMPT + out);
            String usage = "{\"prompt_tokens\":" + PROMPT + ",\"completion_tokens\":" + out + ",\"total_tokens\":"
                    + (PROMPT + out) + "}";
            boolean legacy = req.path().endsWith("/v1/completions");
            if (!r.path("stream").asBoolean(false)) {
                vertx.setTimer(300, t -> req.response().putHeader("content-type", "application/json")
                        .end("{\"model\":\"gpt-4.1-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                                + "\"content\":\"ok\"}}],\"usage\":" + usage + "}"));
                return;
            }
            var res = req.response().setChunked(true).putHeader("content-type", "text/event-stream");
            boolean cut = r.path("model").asText().equals("cut");
            boolean withUsage = r.path("stream_options").path("include_usage").asBoolean(false);
            String chunk = legacy ? "{\"object\":\"text_completion\",\"model\":\"gpt-3.5-turbo-instruct\",\"choices\":"
                    + "[{\"index\":0,\"text\":\"w \"}]}" : "{\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1-mini\","
                    + "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w \"}}]}";
            long[] n = {0};
            vertx.setPeriodic(40, id -> {
                if (res.closed()) {
                    vertx.cancelTimer(id);
                    return;
                }
                if (n[0] < 5) {
                    res.write("data: " + chunk + "\n\n");
                    if (cut && ++n[0] == 2) {
                        vertx.cancelTimer(id);
                        req.connection().close();
                    } else if (!cut) {
                        n[0]++;
                    }
                    return;
                }
                vertx.cancelTimer(id);
                if (withUsage) {
                    res.write("data: {\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4.1-mini\",\"choices\":[],"
                            + "\"usage\":" + usage + "}\n\n");
                }
                res.end("data: [DONE]\n\n");
            });
        });
    }

    static String body(String user, boolean stream, String extra) {
        return "{\"model\":\"gpt-4.1-mini\",\"user\":\"" + user + "\",\"max_tokens\":20" + (stream ? ",\"stream\":true" : "")
                + extra + ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    }

    /**
     * {@code n} requests at once from one process of {@code uid} (one connection each), through
     * {@code path}; {@code hangup}: the client closes after the first bytes of the answer. Prints
     * each status, then each answer's length and whether it held a usage object.
     */
    static String burst(int uid, int n, String path, String body, boolean hangup) {
        String py = """
                import http.client, sys, threading
                port, n, path, body, hangup = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1"
                out = []
                go = threading.Barrier(n)
                def one():
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    go.wait()
                    c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                    r = c.getresponse()
                    if hangup and r.status == 200:
                        r.read(20)
                        c.sock.close()
                        out.append("%d cut" % r.status)
                        return
                    try:
                        data = r.read().decode()
                    except Exception:
                        out.append("%d broken" % r.status)
                        return
                    out.append("%d %s" % (r.status, "usage" if '"usage"' in data else "nousage"))
                ts = [threading.Thread(target=one) for _ in range(n)]
                [t.start() for t in ts]
                [t.join() for t in ts]
                print("\\n".join(out))
                """;
        Proc.Result r = Proc.as(uid, python, "-c", py, Integer.toString(gw), Integer.toString(n), path, body,
                hangup ? "1" : "0");
        assertTrue(r.ok(), r.err());
        return r.out();
    }

    static long count(String out, String prefix) {
        return out.lines().filter(l -> l.startsWith(prefix)).count();
    }

    static long billedTo(String user) {
        return billed.getOrDefault(user, new AtomicLong()).get();
    }

    @Test
    void thirtyConcurrentRequestsNeverSpendMoreThanTheBudget() {
        long admitted = 0;
        for (int round = 1; round <= 3; round++) {
            String out = burst(1001, 30, "/openai/v1/chat/completions", body("w1001", false, ""), false);
            admitted += count(out, "200");
            System.out.printf("budget: round %d of 30 concurrent requests: %d admitted, %d refused (429); billed so far"
                    + " %d of %d tokens%n", round, count(out, "200"), count(out, "429"), billedTo("w1001"), BUDGET);
            assertEquals(30, count(out, "200") + count(out, "429"), out);
        }
        assertTrue(admitted >= 1, "the budget admits some");
        assertEquals(admitted * (PROMPT + COMPLETION), billedTo("w1001"));
        assertTrue(billedTo("w1001") <= BUDGET, "tokens billed " + billedTo("w1001") + " <= budget " + BUDGET);
    }

    /** Requests one at a time until refused; returns how many were admitted (at most {@code max}). */
    static long untilRefused(int uid, String path, String body, boolean hangup, int max) {
        for (int i = 0; i < max; i++) {
            String out = burst(uid, 1, path, body, hangup);
            if (out.startsWith("429")) {
                return i;
            }
            assertTrue(out.startsWith("200"), out);
            assertFalse(out.contains(" usage") && body.contains("\"stream\":true") && !body.contains("include_usage"),
                    "an agent that asked for no usage chunk gets none: " + out);
        }
        return max;
    }

    @Test
    void streamsWithoutIncludeUsageAreCountedAndTheAgentGetsNoExtraChunk() {
        long n = untilRefused(1003, "/openai/v1/chat/completions", body("w1003", true,
                ",\"stream_options\":{\"include_usage\":false}"), false, 40);
        System.out.printf("budget: include_usage:false streams: %d admitted before 429, billed %d of %d%n", n,
                billedTo("w1003"), BUDGET);
        assertTrue(n < 40, "the streams were counted (landed build: 0 tokens, never refused)");
        assertTrue(billedTo("w1003") <= BUDGET, billedTo("w1003") + " <= " + BUDGET);
        assertTrue(billedTo("w1003") >= BUDGET - 200, "the budget was used, not refused early: " + billedTo("w1003"));
    }

    @Test
    void legacyCompletionsStreamsAreCounted() {
        long n = untilRefused(1004, "/openai/v1/completions", "{\"model\":\"gpt-3.5-turbo-instruct\",\"user\":\"w1004\","
                + "\"max_tokens\":20,\"stream\":true,\"prompt\":\"hi\"}", false, 40);
        System.out.printf("budget: legacy /v1/completions streams: %d admitted before 429, billed %d of %d%n", n,
                billedTo("w1004"), BUDGET);
        assertTrue(n < 40, "legacy streams were counted (landed build: 0)");
        assertTrue(billedTo("w1004") <= BUDGET, billedTo("w1004") + " <= " + BUDGET);
    }

    @Test
    void clientsThatHangUpAreChargedTheirReservation() {
        long n = untilRefused(1005, "/openai/v1/chat/completions", body("w1005", true, ""), true, 40);
        System.out.printf("budget: clients hanging up mid-stream: %d admitted before 429, billed %d of %d%n", n,
                billedTo("w1005"), BUDGET);
        assertTrue(n < 40, "hang-ups were charged (landed build: 0)");
        assertTrue(billedTo("w1005") <= BUDGET, billedTo("w1005") + " <= " + BUDGET);
    }

    @Test
    void upstreamErrorsMidStreamAreChargedTheirReservation() {
        long n = untilRefused(1006, "/openai/v1/chat/completions", body("w1006", true, "").replace("gpt-4.1-mini", "cut"),
                false, 40);
        System.out.printf("budget: upstream cut mid-stream: %d admitted before 429, billed %d of %d%n", n,
                billedTo("w1006"), BUDGET);
        assertTrue(n < 40, "cut streams were charged (landed build: 0)");
        assertTrue(billedTo("w1006") <= BUDGET, billedTo("w1006") + " <= " + BUDGET);
    }
}
