package io.keywarden.tests.fleet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Three "nodes" (three real {@code keywarden dev} daemons: three mounts, three gateways, three
 * ledgers) and one real Redis ({@code redis-server} on a loopback port): a workload's token budget
 * holds across the three gateways under parallel load, and a block set on node A reaches B and C.
 */
class FleetIT {
    static final ObjectMapper JSON = new ObjectMapper();
    static final long BUDGET = 1000;
    static Path dir;
    static Process redis;
    static int redisPort;
    static io.keywarden.testkit.HttpStub upstream;
    static int upstreamPort;
    static final AtomicLong billed = new AtomicLong();
    static final String[] NODES = {"a", "b", "c"};
    static final List<Daemon> daemons = new ArrayList<>();
    static final int[] gateways = new int[3];
    static final int[] ops = new int[3];
    static String python;

    @BeforeAll
    static void start() throws Exception {
        Requirements.rootAndFuse();
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/redis-server")), "needs Debian's redis-server (.ci/run installs it)");
        Await.clearOfWindowEdge(Duration.ofHours(1), Duration.ofMinutes(2));
        dir = Files.createTempDirectory("kw-fleet-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        python = Path.of("/usr/bin/python3").toRealPath().toString();
        redisPort = Ports.free();
        redis = io.keywarden.tests.support.FleetNode.redis(redisPort, null);
        upstream = io.keywarden.tests.support.Completions.start(30, 20, 300, (body, in, out) -> billed.addAndGet(in + out));
        upstreamPort = upstream.uri("").getPort();
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai: {}
                workloads:
                  - name: spender
                    spiffeId: spiffe://example.org/spender
                    selectors: [unix:uid:1001]
                    keys: [openai]
                    guard:
                      budget: {tokensPerHour: %d}
                  - name: other
                    spiffeId: spiffe://example.org/other
                    selectors: [unix:uid:1002]
                    keys: [openai]
                  - name: paced
                    spiffeId: spiffe://example.org/paced
                    selectors: [unix:uid:1003]
                    keys: [openai]
                    guard:
                      budget: {requestsPerMinute: 4}
                  - name: bursty
                    spiffeId: spiffe://example.org/bursty
                    selectors: [unix:uid:1004]
                    keys: [openai]
                    guard:
                      anomaly: {factor: 3, baselineHours: 3, minTokensPerHour: 100}
                """.formatted(BUDGET));
        for (int i = 0; i < 3; i++) {
            gateways[i] = Ports.free();
            ops[i] = Ports.free();
            daemons.add(io.keywarden.tests.support.FleetNode.start(dir, NODES[i], gateways[i], upstreamPort, """
                      redis: redis://127.0.0.1:%d
                      keyPrefix: "kwtest:"
                      onUnavailable: closed
                      opTimeout: 3s
                      heartbeat: 1s
                    """.formatted(redisPort), ops[i]));
        }
    }

    @AfterAll
    static void stop() throws Exception {
        for (Daemon d : daemons) {
            assertEquals(0, d.stop());
            d.err.stream().filter(l -> l.contains("fleet")).limit(20).forEach(l -> System.out.println("  daemon: " + l));
        }
        if (upstream != null) {
            upstream.close();
        }
        io.keywarden.tests.support.FleetNode.stop(redis, false);
        io.keywarden.tests.support.FleetNode.removeNodes(dir, NODES);
    }

    /** {@code n} requests at once by uid 1001, request i to gateway i mod 3: each answer's status, a line each. */
    static String burst(int n) {
        String py = """
                import http.client, sys, threading
                ports = [int(p) for p in sys.argv[1].split(",")]
                n, body = int(sys.argv[2]), sys.argv[3]
                out = []
                go = threading.Barrier(n)
                def one(i):
                    c = http.client.HTTPConnection("127.0.0.1", ports[i % len(ports)], timeout=30)
                    go.wait()
                    c.request("POST", "/openai/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
                    r = c.getresponse()
                    r.read()
                    out.append(str(r.status))
                ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
                [t.start() for t in ts]
                [t.join() for t in ts]
                print("\\n".join(out))
                """;
        String body = "{\"model\":\"gpt-4.1-mini\",\"max_tokens\":20,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
        Proc.Result r = Proc.as(1001, python, "-c", py, gateways[0] + "," + gateways[1] + "," + gateways[2],
                Integer.toString(n), body);
        assertTrue(r.ok(), r.err());
        return r.out();
    }

    @Test
    void aBudgetHoldsAcrossThreeGatewaysUnderParallelLoad() {
        long admitted = 0;
        for (int round = 1; round <= 3; round++) {
            String out = burst(30);
            long ok = out.lines().filter(l -> l.equals("200")).count();
            long refused = out.lines().filter(l -> l.equals("429")).count();
            long unavailable = out.lines().filter(l -> l.equals("503")).count();
            admitted += ok;
            System.out.printf("fleet budget: round %d, 30 requests spread over 3 gateways: %d admitted, %d refused"
                    + "%s; billed %d of %d tokens%n", round, ok, refused, unavailable == 0 ? ""
                    : " (" + unavailable + " fleet_unavailable: Redis slower than opTimeout)", billed.get(), BUDGET);
            assertEquals(30, ok + refused + unavailable, out);
        }
        assertTrue(admitted > 0);
        String m = io.keywarden.tests.support.Http.get("http://127.0.0.1:" + ops[0] + "/metrics");
        assertTrue(m.contains("keywarden_fleet_up 1.0"), "the fleet's Redis is up: " + m);
        // Which gateways win the fleet's reservations is the race's: the three nodes together count
        // at least the requests admitted here (other tests of this class may have added some).
        double counted = 0;
        for (int port : ops) {
            counted += io.keywarden.tests.support.Http.get("http://127.0.0.1:" + port + "/metrics").lines()
                    .filter(l -> l.startsWith("keywarden_fleet_reservations_total{outcome=\"admitted\"}"))
                    .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).sum();
        }
        assertTrue(counted >= admitted, "the nodes counted " + counted + " admitted reservations, " + admitted + " admitted");
        m.lines().filter(l -> l.startsWith("keywarden_fleet_op_seconds") && l.contains("quantile") || l.startsWith(
                "keywarden_fleet_op_seconds_sum") || l.startsWith("keywarden_fleet_op_seconds_count")).forEach(l ->
                System.out.println("node a: " + l));
        assertTrue(billed.get() <= BUDGET, "billed " + billed.get() + " <= the fleet budget " + BUDGET
                + " (each node alone would admit up to " + BUDGET + ")");
    }

    /** The time of the first {@code event} record of a ledger. */
    static java.time.Instant ts(Path ledger, String event) throws Exception {
        for (String line : Files.readAllLines(ledger)) {
            JsonNode r = JSON.readTree(line);
            if (event.equals(r.path("event").asText())) {
                return java.time.Instant.parse(r.path("ts").asText());
            }
        }
        throw new AssertionError("no " + event + " in " + ledger);
    }

    static boolean refusedOn(int node) {
        Path key = dir.resolve(NODES[node]).resolve("mnt/openai/api_key");
        return Proc.as(1002, "cat", key.toString()).err().contains("Permission denied");
    }

    static int gatewayStatus(int node) {
        Proc.Result r = Proc.as(1002, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10",
                "-H", "Content-Type: application/json", "--data-binary",
                "{\"model\":\"gpt-4.1-mini\",\"max_tokens\":5,\"messages\":[]}",
                "http://127.0.0.1:" + gateways[node] + "/openai/v1/chat/completions");
        return Integer.parseInt(r.out().trim());
    }

    @Test
    void aBlockOnOneNodeReachesTheOthersAndSoDoesItsUnblock() throws Exception {
        for (int i = 0; i < 3; i++) {
            assertTrue(Proc.as(1002, "cat", dir.resolve(NODES[i]).resolve("mnt/openai/api_key").toString()).out()
                    .startsWith("sk-dev-"), "node " + NODES[i] + " serves workload other");
        }
        long t0 = System.nanoTime();
        Proc.Result block = Daemon.cli("revoke", "--admin-socket", dir.resolve("a/admin/admin.sock").toString(),
                "--spiffe-id", "spiffe://example.org/other", "--block", "--fleet", "--reason", "fleet test");
        assertEquals(0, block.code(), block.out() + block.err());
        long[] seen = new long[3];
        Await.until(Duration.ofSeconds(5), () -> {
            for (int i = 1; i < 3; i++) {
                if (seen[i] == 0 && refusedOn(i)) {
                    seen[i] = System.nanoTime();
                }
            }
            return seen[1] > 0 && seen[2] > 0;
        }, () -> "the block reached node b: " + (seen[1] > 0) + ", node c: " + (seen[2] > 0));
        System.out.printf("fleet block: refused on b after %.0f ms, on c after %.0f ms (the CLI's JVM start included)%n",
                (seen[1] - t0) / 1e6, (seen[2] - t0) / 1e6);
        // Propagation by the ledgers' own clocks (one host): node a's admin.block to b's and c's fleet.block.applied.
        java.time.Instant blockedOnA = ts(dir.resolve("a/audit.jsonl"), "admin.block");
        for (String n : new String[] {"b", "c"}) {
            long ms = java.time.Duration.between(blockedOnA, ts(dir.resolve(n).resolve("audit.jsonl"), "fleet.block.applied"))
                    .toMillis();
            System.out.printf("fleet block: recorded on a, applied on %s %d ms later%n", n, ms);
            assertTrue(ms < 1000, "a block reaches node " + n + " within 1 s: " + ms + " ms");
        }
        assertTrue(refusedOn(0), "and on a");
        for (int i = 0; i < 3; i++) {
            assertEquals(403, gatewayStatus(i), "the gateway of node " + NODES[i] + " refuses the blocked workload");
        }
        for (String n : new String[] {"b", "c"}) {
            String ledger = Files.readString(dir.resolve(n).resolve("audit.jsonl"));
            assertTrue(ledger.contains("\"event\":\"fleet.block.applied\"") && ledger.contains("\"from_node\":\"a\""),
                    "node " + n + " records the block it applied");
        }
        Proc.Result unblock = Daemon.cli("unblock", "--admin-socket", dir.resolve("b/admin/admin.sock").toString(),
                "--spiffe-id", "spiffe://example.org/other", "--fleet");
        assertEquals(0, unblock.code(), unblock.out() + unblock.err());
        Await.until(Duration.ofSeconds(5), () -> !refusedOn(0) && !refusedOn(2), () -> "the unblock reached a and c");
        assertTrue(Files.readString(dir.resolve("a/audit.jsonl")).contains("\"event\":\"fleet.unblock.applied\""));
    }

    /** Complete lines of a live ledger (a line being written is left out). */
    static List<String> completeLines(Path ledger) throws Exception {
        String text = Files.readString(ledger);
        return List.of(text.substring(0, text.lastIndexOf('\n') + 1).split("\n"));
    }

    @Test
    void theThreeLedgersMergedInAnyOrderVerifyPerNodeAndACutRecordIsNamed() throws Exception {
        for (int i = 0; i < 3; i++) {
            Proc.as(1001, "cat", dir.resolve(NODES[i]).resolve("mnt/openai/api_key").toString());
        }
        List<String> all = new ArrayList<>();
        for (String n : NODES) {
            all.addAll(completeLines(dir.resolve(n).resolve("audit.jsonl")));
        }
        java.util.Collections.shuffle(all, new java.util.Random(11));
        Path merged = dir.resolve("merged.jsonl");
        Files.write(merged, all);
        Proc.Result ok = Daemon.cli("audit", "verify", "--merged", merged.toString());
        System.out.println("merged ledger of 3 nodes (" + all.size() + " records, shuffled):\n" + ok.out().trim());
        assertEquals(0, ok.code(), ok.out() + ok.err());
        for (String n : NODES) {
            assertTrue(ok.out().contains("node " + n + ": OK: "), ok.out());
        }
        String cut = all.stream().filter(l -> l.contains("\"node\":\"b\"") && l.contains("\"seq\":3,")).findFirst()
                .orElseThrow();
        all.remove(cut);
        Files.write(merged, all);
        Proc.Result gap = Daemon.cli("audit", "verify", "--merged", merged.toString());
        assertEquals(1, gap.code(), gap.out());
        assertTrue(gap.out().contains("node b: BROKEN") && gap.out().contains("record 3 is missing"), gap.out());
        assertTrue(gap.out().contains("node a: OK") && gap.out().contains("node c: OK"), gap.out());
        Proc.Result show = Daemon.cli("audit", "show", "--merged", merged.toString());
        assertEquals(1, show.code(), "a merged stream that does not verify is not shown: " + show.out());
    }

    @Test
    void fleetStatusListsTheLeasesOfEveryNode() throws Exception {
        java.util.Map<String, String> fingerprints = new java.util.HashMap<>();
        for (int i = 0; i < 3; i++) {
            assertTrue(Proc.as(1001, "cat", dir.resolve(NODES[i]).resolve("mnt/openai/api_key").toString()).out()
                    .startsWith("sk-dev-"));
        }
        Await.until(Duration.ofSeconds(10), () -> {
            Proc.Result r = Daemon.cli("fleet", "status", "--admin-socket", dir.resolve("c/admin/admin.sock").toString(),
                    "--workload", "spender", "--json");
            JsonNode leases = JSON.readTree(r.out());
            fingerprints.clear();
            for (JsonNode l : leases) {
                fingerprints.put(l.path("node").asText(), l.path("fingerprint").asText());
            }
            // Each node's entry is its last heartbeat: wait for the ones taken since the reads.
            return fingerprints.keySet().containsAll(List.of("a", "b", "c"))
                    && fingerprints.values().stream().allMatch(f -> f.matches("sha256:[0-9a-f]{16}"));
        }, () -> "fleet status on node c lists spender's leases on a, b and c: " + fingerprints);
        assertTrue(fingerprints.values().stream().allMatch(f -> f.matches("sha256:[0-9a-f]{16}")), fingerprints.toString());
        Proc.Result table = Daemon.cli("fleet", "status", "--admin-socket", dir.resolve("a/admin/admin.sock").toString());
        System.out.println("fleet status:\n" + table.out());
        assertTrue(!table.out().contains("sk-dev-"), "never a key");
        Proc.Result nodes = Daemon.cli("fleet", "nodes", "--admin-socket", dir.resolve("b/admin/admin.sock").toString());
        System.out.println("fleet nodes:\n" + nodes.out());
        for (String n : NODES) {
            assertTrue(nodes.out().lines().anyMatch(l -> l.startsWith(n + " ") && l.matches(".* yes +live")), nodes.out());
        }
    }

    @Test
    void requestsPerMinuteHoldAcrossTheThreeGateways() throws Exception {
        Await.clearOfWindowEdge(Duration.ofMinutes(1), Duration.ofSeconds(20));
        int ok = 0;
        StringBuilder seen = new StringBuilder();
        for (int i = 0; i < 9; i++) {
            Proc.Result r = Proc.as(1003, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", "-H",
                    "Content-Type: application/json", "--data-binary",
                    "{\"model\":\"gpt-4.1-mini\",\"max_tokens\":5,\"messages\":[]}",
                    "http://127.0.0.1:" + gateways[i % 3] + "/openai/v1/chat/completions");
            seen.append(r.out().trim()).append(' ');
            ok += r.out().trim().equals("200") ? 1 : 0;
        }
        System.out.println("fleet requests per minute (4), 9 requests round-robin over 3 gateways: " + seen.toString().trim());
        assertEquals(4, ok, "4 per minute for the fleet, not 4 per node: " + seen);
    }

    @Test
    void theAnomalyRuleSeesTheFleetsHourNotOneNodes() throws Exception {
        // Three complete hours of 100 tokens each in the fleet's history: the rule fires above 3 x 100.
        long hour = System.currentTimeMillis() / 3_600_000;
        Proc.Result seeded = Proc.run("redis-cli", "-p", Integer.toString(redisPort), "HSET",
                "kwtest:{spiffe://example.org/bursty}:hist", "first", Long.toString(hour - 3), Long.toString(hour - 1), "100",
                Long.toString(hour - 2), "100", Long.toString(hour - 3), "100");
        assertTrue(seeded.ok(), seeded.err());
        // 8 requests of 50 tokens round-robin: 400 fleet-wide (over 300), at most 150 on any one node.
        for (int i = 0; i < 8; i++) {
            Proc.Result r = Proc.as(1004, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", "-H",
                    "Content-Type: application/json", "--data-binary",
                    "{\"model\":\"gpt-4.1-mini\",\"max_tokens\":20,\"messages\":[]}",
                    "http://127.0.0.1:" + gateways[i % 3] + "/openai/v1/chat/completions");
            assertEquals("200", r.out().trim(), "the anomaly rule alerts, it does not refuse");
        }
        List<String> breaches = new ArrayList<>();
        Await.until(Duration.ofSeconds(10), () -> {
            breaches.clear();
            for (String n : NODES) {
                for (String line : completeLines(dir.resolve(n).resolve("audit.jsonl"))) {
                    if (line.contains("\"event\":\"guard.breach\"") && line.contains("\"workload\":\"bursty\"")) {
                        breaches.add(n + ": " + line);
                    }
                }
            }
            return !breaches.isEmpty();
        }, () -> "an anomaly breach recorded by a node on the fleet's counts");
        breaches.forEach(b -> System.out.println("fleet anomaly: " + b.replaceAll(",\"(prev|hash)\":\"[^\"]*\"", "")));
        assertEquals(1, breaches.size(), "one breach for the fleet, recorded by the node that claimed it: " + breaches);
        assertTrue(breaches.get(0).contains("\"kind\":\"anomaly\"") && breaches.get(0).contains("fleet-wide"),
                breaches.toString());
        String claimed = Proc.run("redis-cli", "-p", Integer.toString(redisPort), "GET",
                "kwtest:{spiffe://example.org/bursty}:fired:anomaly:" + hour).out().trim();
        assertTrue(breaches.get(0).startsWith(claimed + ": "), "the claimant " + claimed + " recorded it");
        Await.until(Duration.ofSeconds(10), () -> "400".equals(Proc.run("redis-cli", "-p", Integer.toString(redisPort), "GET",
                "kwtest:{spiffe://example.org/bursty}:tok:h:" + hour).out().trim()), () -> "the fleet counted all 8 requests");
    }
}
