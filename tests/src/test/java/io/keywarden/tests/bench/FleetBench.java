package io.keywarden.tests.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.FleetNode;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The fleet on one host: {@code bench.nodes} daemons (default 10) and one redis-server, plus one
 * daemon without a fleet for comparison. Prints: tokens billed against a fleet budget under
 * parallel bursts spread over every gateway (the overshoot), block propagation from one node to the
 * others by the ledgers' clocks (p50, p99), the gateway's added latency with the fleet's
 * reservation against the same gateway without a fleet (p50, one connection), and Redis operations
 * per request. Side by side, when LiteLLM is installed ({@link GatewayBench#litellmBinary}): two
 * LiteLLM proxies sharing the same Redis (its documented way to share limits across instances:
 * {@code router_settings.redis_*}, usage-based routing), one deployment whose {@code tpm} is the
 * same budget, under the same bursts: what it lets through and its latency. Asserts nothing about time.
 * Run: {@code ./mvnw -B -q install -DskipTests -DskipITs && ./mvnw -B -Pbench -pl tests verify -Dit.test=FleetBench}
 */
class FleetBench {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int NODES = Integer.getInteger("bench.nodes", 10);
    static final long BUDGET = 5000;

    @Test
    void budgetsBlocksAndLatencyAcrossNodes() throws Exception {
        Requirements.rootAndFuse();
        io.keywarden.testkit.Await.clearOfWindowEdge(java.time.Duration.ofHours(1), java.time.Duration.ofMinutes(6));
        Path dir = Files.createTempDirectory("kw-fleetbench-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path loadgen = GatewayBench.loadGen(dir);
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai: {}
                workloads:
                  - {name: fast, spiffeId: "spiffe://example.org/fast", selectors: [unix:uid:1001], keys: [openai],
                     guard: {budget: {tokensPerHour: 100000000000}}}
                  - {name: blocked, spiffeId: "spiffe://example.org/blocked", selectors: [unix:uid:1002], keys: [openai]}
                  - {name: spender, spiffeId: "spiffe://example.org/spender", selectors: [unix:uid:1003], keys: [openai],
                     guard: {budget: {tokensPerHour: %d}}}
                """.formatted(BUDGET));
        int redisPort = Ports.free();
        Process redis = FleetNode.redis(redisPort, null);
        Vertx vertx = Vertx.vertx();
        AtomicLong billed = new AtomicLong();
        List<Daemon> daemons = new ArrayList<>();
        int[] gateways = new int[NODES];
        try {
            int upstream = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b -> {
                if (b.toString().contains("\"spender\"")) {
                    billed.addAndGet(50);
                }
                req.response().putHeader("content-type", "application/json").end("{\"model\":\"gpt-4.1-mini\","
                        + "\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":20}}");
            })).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int ops0 = Ports.free();
            for (int i = 0; i < NODES; i++) {
                gateways[i] = Ports.free();
                daemons.add(FleetNode.start(dir, "n" + i, gateways[i], upstream, """
                          redis: redis://127.0.0.1:%d
                          keyPrefix: "bench:"
                          opTimeout: 2s
                        """.formatted(redisPort), i == 0 ? ops0 : Ports.free()));
            }
            // The same gateway without a fleet, for the added latency.
            int plainGw = Ports.free();
            Path plain = dir.resolve("plain");
            Files.createDirectories(plain);
            Files.writeString(plain.resolve("config.yaml"), """
                    policy: ../policy.yaml
                    issuers: {dev: {type: dev}}
                    gateway: {listen: 127.0.0.1:%d, upstreams: {openai: "http://127.0.0.1:%d"}}
                    """.formatted(plainGw, upstream));
            Daemon p = Daemon.start(Map.of("NODE_NAME", "plain"), "dev", "--mount", plain.resolve("mnt").toString(),
                    "--policy", dir.resolve("policy.yaml").toString(), "--audit", plain.resolve("audit.jsonl").toString(),
                    "--admin-socket", plain.resolve("admin/admin.sock").toString(), "--listen", "127.0.0.1:" + Ports.free(),
                    "--config", plain.resolve("config.yaml").toString());
            daemons.add(p);
            p.awaitOut("gateway: http", 30);
            String info = Proc.run("redis-cli", "-p", Integer.toString(redisPort), "INFO", "commandstats").out();
            System.out.printf("== fleet: %d nodes + 1 without a fleet, one redis-server, one 2-vCPU host ==%n", NODES);

            // 1. Added latency: one connection, the fleet's reservation against none.
            String body = "{\"model\":\"gpt-4.1-mini\",\"max_tokens\":20,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
            long[] withFleet = GatewayBench.load(dir, loadgen, gateways[0], "/openai/v1/chat/completions", 1, body,
                    "Bearer x");
            long[] without = GatewayBench.load(dir, loadgen, plainGw, "/openai/v1/chat/completions", 1, body, "Bearer x");
            System.out.printf("latency, 1 conn: with the fleet p50 %d µs p99 %d µs (%d rps); without p50 %d µs p99 %d µs"
                    + " (%d rps); the reservation adds %d µs at the median%n", withFleet[2], withFleet[3], withFleet[1],
                    without[2], without[3], without[1], withFleet[2] - without[2]);
            // The reservation's own wait, as node n0 measured it (the Redis round trip of check-and-reserve).
            Map<String, Double> op = new java.util.HashMap<>();
            io.keywarden.tests.support.Http.get("http://127.0.0.1:" + ops0 + "/metrics").lines()
                    .filter(l -> l.startsWith("keywarden_fleet_op_seconds_"))
                    .forEach(l -> op.put(l.substring(0, l.indexOf('{')), Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))));
            System.out.printf("the reservation's wait for Redis on node n0: mean %.0f µs over %.0f reservations, max %.0f µs%n",
                    1e6 * op.getOrDefault("keywarden_fleet_op_seconds_sum", 0.0)
                            / Math.max(1, op.getOrDefault("keywarden_fleet_op_seconds_count", 0.0)),
                    op.getOrDefault("keywarden_fleet_op_seconds_count", 0.0),
                    1e6 * op.getOrDefault("keywarden_fleet_op_seconds_max", 0.0));
            long calls = calls(redisPort) - calls(info);
            System.out.printf("Redis commands per fleet request: %.2f (%d over %d requests)%n",
                    (double) calls / Math.max(1, withFleet[0]), calls, withFleet[0]);

            // 2. Overshoot: bursts of 60 spread over every gateway against one fleet budget.
            long admitted = 0;
            for (int round = 0; round < 5; round++) {
                admitted += burst(1003, gateways, "/openai/v1/chat/completions", body.replace("\"model\"",
                        "\"user\":\"spender\",\"model\""), "");
            }
            System.out.printf("budget %d tokens/hour, 5 bursts of 60 over %d gateways: %d admitted, billed %d (overshoot"
                    + " %d tokens, %.1f%%)%n", BUDGET, NODES, admitted, billed.get(), Math.max(0, billed.get() - BUDGET),
                    100.0 * Math.max(0, billed.get() - BUDGET) / BUDGET);

            // 3. Block propagation by the ledgers' clocks.
            List<Long> ms = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                Daemon.cli("revoke", "--admin-socket", dir.resolve("n0/admin/admin.sock").toString(), "--spiffe-id",
                        "spiffe://example.org/blocked", "--block", "--fleet", "--reason", "bench " + i);
                String reason = "bench " + i;
                io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10), () -> {
                    for (int n = 1; n < NODES; n++) {
                        if (last(dir.resolve("n" + n).resolve("audit.jsonl"), "fleet.block.applied", reason) == null) {
                            return false;
                        }
                    }
                    return true;
                }, () -> "block " + reason + " applied on every node");
                Instant at = last(dir.resolve("n0/audit.jsonl"), "admin.block", null);
                for (int n = 1; n < NODES; n++) {
                    Instant applied = last(dir.resolve("n" + n).resolve("audit.jsonl"), "fleet.block.applied", "bench " + i);
                    if (applied != null && at != null) {
                        ms.add(java.time.Duration.between(at, applied).toMillis());
                    }
                }
                Daemon.cli("unblock", "--admin-socket", dir.resolve("n0/admin/admin.sock").toString(), "--spiffe-id",
                        "spiffe://example.org/blocked", "--fleet");
            }
            java.util.Collections.sort(ms);
            System.out.printf("block propagation, %d applies on %d nodes: p50 %d ms, p99 %d ms, max %d ms%n", ms.size(),
                    NODES - 1, ms.isEmpty() ? -1 : ms.get(ms.size() / 2), ms.isEmpty() ? -1 : ms.get((ms.size() * 99) / 100),
                    ms.isEmpty() ? -1 : ms.get(ms.size() - 1));

            // 4. LiteLLM, side by side on the same Redis (its failure is printed, not the bench's).
            try {
                liteLlm(dir, loadgen, redisPort, body);
            } catch (Exception | AssertionError e) {
                System.out.println("litellm: its side failed: " + e.getMessage());
            }
        } finally {
            for (Daemon d : daemons) {
                d.stop();
            }
            vertx.close().await(10, TimeUnit.SECONDS);
            FleetNode.stop(redis, false);
            for (int i = 0; i < NODES; i++) {
                Path m = dir.resolve("n" + i).resolve("mnt");
                if (Mounts.at(m).isPresent()) {
                    Mounts.detach(m);
                }
            }
            if (Mounts.at(dir.resolve("plain/mnt")).isPresent()) {
                Mounts.detach(dir.resolve("plain/mnt"));
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    /** 60 parallel requests by {@code uid}, request i to {@code ports[i mod n]}: how many were answered 200. */
    static long burst(int uid, int[] ports, String path, String body, String authorization) {
        String py = """
                import http.client, sys, threading
                ports = [int(p) for p in sys.argv[1].split(",")]
                headers = {"Content-Type": "application/json"}
                if sys.argv[4]:
                    headers["Authorization"] = sys.argv[4]
                out = []
                go = threading.Barrier(60)
                def one(i):
                    c = http.client.HTTPConnection("127.0.0.1", ports[i % len(ports)], timeout=60)
                    go.wait()
                    c.request("POST", sys.argv[3], body=sys.argv[2], headers=headers)
                    r = c.getresponse(); r.read(); out.append(r.status)
                ts = [threading.Thread(target=one, args=(i,)) for i in range(60)]
                [t.start() for t in ts]; [t.join() for t in ts]
                print(sum(1 for s in out if s == 200))
                """;
        StringBuilder list = new StringBuilder();
        for (int g : ports) {
            list.append(list.length() == 0 ? "" : ",").append(g);
        }
        Proc.Result r = Proc.as(uid, "/usr/bin/python3", "-c", py, list.toString(), body, path, authorization);
        if (!r.ok()) {
            throw new AssertionError("the burst failed: " + r.err());
        }
        return Long.parseLong(r.out().trim());
    }

    /**
     * Two LiteLLM proxies (one worker each) sharing the fleet's Redis, one deployment limited to
     * {@link #BUDGET} tokens per minute (its closest equivalent of a token budget without a
     * database), under the same five bursts; and its latency on one connection.
     */
    static void liteLlm(Path dir, Path loadgen, int redisPort, String body) throws Exception {
        Path bin = GatewayBench.litellmBinary();
        if (bin == null) {
            System.out.println("litellm: not installed (python3 -m venv ~/.cache/keywarden/litellm-venv &&"
                    + " ~/.cache/keywarden/litellm-venv/bin/pip install 'litellm[proxy]'): its side is skipped");
            return;
        }
        Vertx vertx = Vertx.vertx();
        AtomicLong billed = new AtomicLong();
        List<Process> proxies = new ArrayList<>();
        try {
            int upstream = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b -> {
                if (b.toString().contains("budgeted")) {
                    billed.addAndGet(50);
                }
                req.response().putHeader("content-type", "application/json").end("{\"id\":\"x\",\"object\":"
                        + "\"chat.completion\",\"created\":1,\"model\":\"gpt-4.1-mini\",\"choices\":[{\"index\":0,"
                        + "\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},\"finish_reason\":\"stop\"}],"
                        + "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":20,\"total_tokens\":50}}");
            })).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            String config = """
                    model_list:
                      - model_name: gpt-4.1-mini
                        litellm_params: {model: openai/gpt-4.1-mini, api_base: "http://127.0.0.1:%1$d/v1", api_key: sk-up}
                      - model_name: budgeted
                        litellm_params: {model: openai/budgeted, api_base: "http://127.0.0.1:%1$d/v1", api_key: sk-up,
                                         tpm: %2$d, rpm: 1000000}
                    router_settings:
                      num_retries: 0
                      routing_strategy: usage-based-routing-v2
                      redis_host: 127.0.0.1
                      redis_port: %3$d
                      enable_pre_call_checks: true
                    general_settings:
                      master_key: sk-bench-master
                    litellm_settings:
                      telemetry: false
                      num_retries: 0
                    """.formatted(upstream, BUDGET, redisPort);
            int[] ports = {Ports.free(), Ports.free()};
            for (int i = 0; i < 2; i++) {
                proxies.add(GatewayBench.startLiteLlm(bin, dir, "litellm-" + i, ports[i], 1, config));
            }
            String auth = "Bearer sk-bench-master";
            long[] lat = GatewayBench.load(dir, loadgen, ports[0], "/v1/chat/completions", 1, body, auth);
            System.out.printf("litellm latency, 1 conn (one of two proxies on the same Redis): p50 %d µs p99 %d µs (%d rps)%n",
                    lat[2], lat[3], lat[1]);
            long admitted = 0;
            String budgeted = body.replace("gpt-4.1-mini", "budgeted");
            // Its tpm window is the minute: all five bursts within one.
            io.keywarden.testkit.Await.clearOfWindowEdge(java.time.Duration.ofMinutes(1),
                    java.time.Duration.ofSeconds(45));
            long t0 = System.nanoTime();
            for (int round = 0; round < 5; round++) {
                admitted += burst(1003, ports, "/v1/chat/completions", budgeted, auth);
            }
            System.out.printf("litellm: the five bursts took %.1f s, within one minute%n", (System.nanoTime() - t0) / 1e9);
            System.out.printf("litellm: tpm %d on one deployment, 2 proxies on one Redis, 5 bursts of 60 over both: %d"
                    + " admitted, billed %d (overshoot %d tokens, %.1f%%)%n", BUDGET, admitted, billed.get(),
                    Math.max(0, billed.get() - BUDGET), 100.0 * Math.max(0, billed.get() - BUDGET) / BUDGET);
        } finally {
            for (Process p : proxies) {
                p.descendants().forEach(ProcessHandle::destroy);
                p.destroy();
                p.waitFor(30, TimeUnit.SECONDS);
            }
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    /** Commands the server has run in all (INFO commandstats, summed). */
    static long calls(int port) {
        return calls(Proc.run("redis-cli", "-p", Integer.toString(port), "INFO", "commandstats").out());
    }

    static long calls(String info) {
        long n = 0;
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("calls=(\\d+)").matcher(info);
        while (m.find()) {
            n += Long.parseLong(m.group(1));
        }
        return n;
    }

    /** The time of the last {@code event} record of a ledger (whose reason contains {@code reason}, if given). */
    static Instant last(Path ledger, String event, String reason) throws Exception {
        Instant out = null;
        String text = Files.readString(ledger);
        for (String line : text.substring(0, text.lastIndexOf('\n') + 1).split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode r = JSON.readTree(line);
            if (event.equals(r.path("event").asText()) && (reason == null || line.contains(reason))) {
                out = Instant.parse(r.path("ts").asText());
            }
        }
        return out;
    }
}
