package io.keywarden.tests.fleet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What a reader and a gateway caller see when the fleet's Redis fails: node a runs with
 * {@code onUnavailable: local}, node b with {@code closed}; the real redis-server is killed with
 * SIGKILL and started again, and fed hostile values.
 */
class FleetFailureIT {
    static Path dir;
    static Process redis;
    static int redisPort;
    static io.keywarden.testkit.HttpStub upstream;
    static int upstreamPort;
    static final List<Daemon> daemons = new ArrayList<>();
    static final int[] gateways = new int[2];
    static final int[] ops = new int[2];
    static final String[] NODES = {"a", "b"};

    @BeforeAll
    static void start() throws Exception {
        Requirements.rootAndFuse();
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/redis-server")), "needs Debian's redis-server (.ci/run installs it)");
        dir = Files.createTempDirectory("kw-fleetfail-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        redisPort = Ports.free();
        redis = startRedis(null);
        upstream = io.keywarden.tests.support.Completions.start(3, 2, 0, (body, in, out) -> { });
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
                      budget: {tokensPerHour: 100000}
                  - name: other
                    spiffeId: spiffe://example.org/other
                    selectors: [unix:uid:1002]
                    keys: [openai]
                """);
        for (int i = 0; i < 2; i++) {
            gateways[i] = Ports.free();
            ops[i] = Ports.free();
            daemons.add(startNode(i));
        }
    }

    /** Node {@code i} (a: onUnavailable local, b: closed) on its gateway and ops ports. */
    static Daemon startNode(int i) throws Exception {
        return io.keywarden.tests.support.FleetNode.start(dir, NODES[i], gateways[i], upstreamPort, """
                  redis: redis://127.0.0.1:%d
                  keyPrefix: "kwfail:"
                  onUnavailable: %s
                  opTimeout: 300ms
                """.formatted(redisPort, i == 0 ? "local" : "closed"), ops[i]);
    }

    static String readyz(int node) {
        return io.keywarden.tests.support.Http.get("http://127.0.0.1:" + ops[node] + "/readyz");
    }

    /** redis-server on the test's port; with {@code rdb}, starting from that snapshot. */
    static Process startRedis(Path rdb) throws Exception {
        return io.keywarden.tests.support.FleetNode.redis(redisPort, rdb);
    }

    @AfterAll
    static void stop() throws Exception {
        for (Daemon d : daemons) {
            int code = d.stop();
            String logs = String.join("\n", d.err);
            assertTrue(!logs.contains("Exception in thread"), "no thread died: " + logs);
            assertEquals(0, code, logs);
        }
        if (upstream != null) {
            upstream.close();
        }
        if (redis != null) {
            redis.destroyForcibly();
            redis.waitFor(10, TimeUnit.SECONDS);
        }
        io.keywarden.tests.support.FleetNode.removeNodes(dir, NODES);
    }

    static String gateway(int uid, int node) {
        Proc.Result r = Proc.as(uid, "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-m", "10", "-H",
                "Content-Type: application/json", "--data-binary",
                "{\"model\":\"gpt-4.1-mini\",\"max_tokens\":5,\"messages\":[]}",
                "http://127.0.0.1:" + gateways[node] + "/openai/v1/chat/completions");
        return r.out();
    }

    static int status(String out) {
        return Integer.parseInt(out.substring(out.lastIndexOf('\n') + 1).trim());
    }

    /** A read of the key file by {@code uid} on {@code node}: its time in ms, or -1 when refused. */
    static long read(int uid, int node) {
        long t = System.nanoTime();
        Proc.Result r = Proc.as(uid, "cat", dir.resolve(NODES[node]).resolve("mnt/openai/api_key").toString());
        return r.out().startsWith("sk-dev-") ? (System.nanoTime() - t) / 1_000_000 : -1;
    }

    @Test
    void redisKilledAndRestartedWithABlockMadeMeanwhile() throws Exception {
        assertEquals(200, status(gateway(1001, 0)));
        assertEquals(200, status(gateway(1001, 1)));
        // A block another node stored while this fleet could not hear it: in the snapshot Redis restarts from.
        Path snap = dir.resolve("snap");
        Files.createDirectories(snap);
        int tmpPort = Ports.free();
        Process tmp = io.keywarden.tests.support.FleetNode.redis(tmpPort, snap.resolve("dump.rdb"));
        try {
            Proc.run("redis-cli", "-p", Integer.toString(tmpPort), "HSET", "kwfail:blocks", "spiffe://example.org/other",
                    "{\"op\":\"block\",\"spiffe_id\":\"spiffe://example.org/other\",\"reason\":\"made during the outage\","
                    + "\"node\":\"z\",\"at\":" + System.currentTimeMillis() + "}");
            assertTrue(Proc.run("redis-cli", "-p", Integer.toString(tmpPort), "SAVE").out().contains("OK"));
        } finally {
            io.keywarden.tests.support.FleetNode.stop(tmp, false);
        }

        redis.destroyForcibly();
        redis.waitFor(10, TimeUnit.SECONDS);
        String local = gateway(1001, 0);
        String closed = gateway(1001, 1);
        System.out.printf("Redis down: node a (local) answers %d, node b (closed) answers %d%n", status(local),
                status(closed));
        assertEquals(200, status(local), "onUnavailable local: the node enforces alone: " + local);
        assertEquals(503, status(closed), closed);
        assertTrue(closed.contains("\"code\":\"fleet_unavailable\""), closed);
        Await.until(Duration.ofSeconds(10), () -> readyz(0).contains("on its own counts") && readyz(1).contains(
                "503 fleet_unavailable"), () -> "/readyz says how each node decides: " + readyz(0) + " / " + readyz(1));
        System.out.println("Redis down: node a /readyz " + readyz(0));
        assertTrue(readyz(0).contains("\"ready\":true"), "still ready: opens never depend on Redis");
        String m = io.keywarden.tests.support.Http.get("http://127.0.0.1:" + ops[0] + "/metrics");
        assertTrue(m.contains("keywarden_fleet_deciding_alone 1.0") && m.contains("keywarden_fleet_up 0.0"), m);
        for (int node = 0; node < 2; node++) {
            for (int uid : new int[] {1001, 1002}) {
                long ms = read(uid, node);
                assertTrue(ms >= 0, "uid " + uid + " reads its key on node " + NODES[node] + " with Redis down");
                System.out.printf("Redis down: uid %d reads its key on node %s in %d ms (setpriv+cat)%n", uid, NODES[node], ms);
            }
        }

        redis = startRedis(snap.resolve("dump.rdb"));
        Await.until(Duration.ofSeconds(15), () -> read(1002, 0) < 0 && read(1002, 1) < 0,
                () -> "both nodes applied the block stored while they could not hear it");
        Await.until(Duration.ofSeconds(15), () -> status(gateway(1001, 1)) == 200, () -> "node b serves again");
        Await.until(Duration.ofSeconds(10), () -> readyz(0).contains("\"degraded\":[]"), () -> "no longer alone: "
                + readyz(0));
        assertEquals(403, status(gateway(1002, 0)));
        for (String n : NODES) {
            assertTrue(Files.readString(dir.resolve(n).resolve("audit.jsonl")).contains("made during the outage"),
                    "node " + n + " recorded the block it applied after the restart");
        }
        Proc.Result unblock = Daemon.cli("unblock", "--admin-socket", dir.resolve("a/admin/admin.sock").toString(),
                "--spiffe-id", "spiffe://example.org/other", "--fleet");
        assertEquals(0, unblock.code(), unblock.out() + unblock.err());
        Await.until(Duration.ofSeconds(5), () -> read(1002, 1) >= 0, () -> "the fleet unblock reached node b");
    }

    @Test
    void hostileValuesInRedisNeitherCrashANodeNorLiftABlock() throws Exception {
        String cli = "redis-cli -p " + redisPort;
        Proc.Result block = Daemon.cli("revoke", "--admin-socket", dir.resolve("a/admin/admin.sock").toString(),
                "--spiffe-id", "spiffe://example.org/other", "--block", "--fleet", "--reason", "hostile test");
        assertEquals(0, block.code(), block.out() + block.err());
        Await.until(Duration.ofSeconds(5), () -> read(1002, 1) < 0, () -> "blocked on b");
        for (String[] c : new String[][] {
            {"PUBLISH", "kwfail:blocks", "not json"},
            {"PUBLISH", "kwfail:blocks", "{\"op\":\"unblock\",\"spiffe_id\":\"spiffe://example.org/other\",\"at\":1}"},
            {"PUBLISH", "kwfail:blocks", "{\"op\":\"unblock\",\"spiffe_id\":\"spiffe://example.org/other\"}"},
            {"PUBLISH", "kwfail:blocks", "x".repeat(10_000)},
            {"HSET", "kwfail:blocks", "spiffe://example.org/spender", "{\"op\":\"block\""},
            {"SET", "kwfail:{spiffe://example.org/spender}:res", "not a hash"},
            {"LPUSH", "kwfail:{spiffe://example.org/spender}:tok:h:" + System.currentTimeMillis() / 3_600_000, "x"},
        }) {
            List<String> cmd = new ArrayList<>(List.of(cli.split(" ")));
            cmd.addAll(List.of(c));
            Proc.run(cmd.toArray(String[]::new));
        }
        assertTrue(read(1002, 1) < 0 && read(1002, 0) < 0, "an unblock older than the block, or malformed, lifts nothing");
        assertEquals(200, status(gateway(1001, 0)), "the wrong types in the spender's keys count as nothing");
        assertEquals(200, status(gateway(1001, 1)));
        assertTrue(read(1001, 0) >= 0 && read(1001, 1) >= 0, "a malformed block record blocks no one");
        Proc.Result unblock = Daemon.cli("unblock", "--admin-socket", dir.resolve("b/admin/admin.sock").toString(),
                "--spiffe-id", "spiffe://example.org/other", "--fleet");
        assertEquals(0, unblock.code(), unblock.out() + unblock.err());
        Await.until(Duration.ofSeconds(5), () -> read(1002, 0) >= 0 && read(1002, 1) >= 0, () -> "unblocked on both");
    }

    @Test
    void aSlowRedisIsWaitedForOnlyUpToTheOpTimeout() throws Exception {
        Process sleep = new ProcessBuilder("redis-cli", "-p", Integer.toString(redisPort), "DEBUG", "SLEEP", "3")
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        try {
            // Once the sleep has begun, Redis answers nothing until it ends.
            Await.until(Duration.ofSeconds(5), () -> Proc.run("timeout", "0.3", "redis-cli", "-p",
                    Integer.toString(redisPort), "ping").code() != 0, () -> "Redis did not start its DEBUG SLEEP");
            long t = System.nanoTime();
            String local = gateway(1001, 0);
            long localMs = (System.nanoTime() - t) / 1_000_000;
            String closed = gateway(1001, 1);
            System.out.printf("Redis asleep (DEBUG SLEEP 3): node a answered %d in %d ms, node b %d%n", status(local),
                    localMs, status(closed));
            assertEquals(200, status(local), local);
            assertEquals(503, status(closed), closed);
            assertTrue(read(1002, 0) >= 0, "file reads never wait for Redis");
        } finally {
            sleep.waitFor(10, TimeUnit.SECONDS);
        }
        Await.until(Duration.ofSeconds(10), () -> status(gateway(1001, 1)) == 200, () -> "node b serves once Redis wakes");
    }

    @Test
    void aBlockMadeWhileRedisIsAwayIsPushedToTheFleetWhenItReturns() throws Exception {
        redis.destroyForcibly();
        redis.waitFor(10, TimeUnit.SECONDS);
        Proc.Result block = Daemon.cli("revoke", "--admin-socket", dir.resolve("a/admin/admin.sock").toString(),
                "--spiffe-id", "spiffe://example.org/other", "--block", "--fleet", "--reason", "during the partition");
        assertEquals(1, block.code(), "blocked here, but not stored in the fleet: " + block.out() + block.err());
        assertTrue(block.err().contains("applied on this node only"), block.err());
        assertTrue(read(1002, 0) < 0, "node a holds its block");
        assertTrue(read(1002, 1) >= 0, "node b has not heard of it");
        // Node a restarts before Redis returns: its block is still to be pushed (fleet-pending.json).
        assertEquals(0, daemons.get(0).stop());
        assertTrue(Files.readString(dir.resolve("a/fleet-pending.json")).contains("during the partition"));
        daemons.set(0, startNode(0));
        assertTrue(read(1002, 0) < 0, "node a still holds its block after the restart");
        redis = startRedis(null);
        Await.until(Duration.ofSeconds(15), () -> read(1002, 1) < 0, () -> "node a pushed its block when Redis came back,"
                + " and node b applied it");
        assertTrue(Files.readString(dir.resolve("b/audit.jsonl")).contains("during the partition"));
        Await.until(Duration.ofSeconds(5), () -> Files.readString(dir.resolve("a/fleet-pending.json")).equals("[]"),
                () -> "nothing left pending on node a");
        Proc.Result unblock = Daemon.cli("unblock", "--admin-socket", dir.resolve("b/admin/admin.sock").toString(),
                "--spiffe-id", "spiffe://example.org/other", "--fleet");
        assertEquals(0, unblock.code(), unblock.out() + unblock.err());
        Await.until(Duration.ofSeconds(5), () -> read(1002, 0) >= 0 && read(1002, 1) >= 0, () -> "unblocked on both");
    }
}
