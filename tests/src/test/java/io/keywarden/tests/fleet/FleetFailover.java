package io.keywarden.tests.fleet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.FleetNode;
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
import org.junit.jupiter.api.TestInstance;

/**
 * Two nodes on a replicated Redis (a Cluster, or a master watched by Sentinel: the subclasses):
 * the master that holds both the workload's budget and the fleet's blocks is killed with SIGKILL,
 * its replica takes over, and the budget and the kill switch keep holding.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class FleetFailover {
    static final long BUDGET = 500;
    static final String SPENDER = "spiffe://example.org/spender";
    Path dir;
    Map<Integer, Process> redis;
    io.keywarden.testkit.HttpStub upstream;
    int upstreamPort;
    String prefix;
    final AtomicLong billed = new AtomicLong();
    static final String[] NODES = {"a", "b"};
    final List<Daemon> daemons = new ArrayList<>();
    final int[] gateways = new int[2];

    /** Starts the replicated Redis under {@code dir}: its processes by port. */
    abstract Map<Integer, Process> startRedis(Path dir) throws Exception;

    /** The config's {@code fleet.redis} for it. */
    abstract String fleetRedis();

    /** The port of the master that holds {@code key} now. */
    abstract int masterOf(String key);

    @BeforeAll
    void start() throws Exception {
        Requirements.rootAndFuse();
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/redis-server")), "needs Debian's redis-server (.ci/run installs it)");
        Await.clearOfWindowEdge(Duration.ofHours(1), Duration.ofMinutes(2));
        dir = Files.createTempDirectory("kw-fleetfailover-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        redis = startRedis(dir);
        // A prefix whose blocks key lives with the spender's budget: one master's death tests both.
        int spenderMaster = masterOf("{" + SPENDER + "}");
        for (int i = 0; prefix == null; i++) {
            if (masterOf("kwc" + i + ":blocks") == spenderMaster) {
                prefix = "kwc" + i + ":";
            }
        }
        upstream = io.keywarden.tests.support.Completions.start(30, 20, 0, (body, in, out) -> billed.addAndGet(in + out));
        upstreamPort = upstream.uri("").getPort();
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai: {}
                workloads:
                  - name: spender
                    spiffeId: %s
                    selectors: [unix:uid:1001]
                    keys: [openai]
                    guard:
                      budget: {tokensPerHour: %d}
                  - name: other
                    spiffeId: spiffe://example.org/other
                    selectors: [unix:uid:1002]
                    keys: [openai]
                """.formatted(SPENDER, BUDGET));
        for (int i = 0; i < 2; i++) {
            gateways[i] = Ports.free();
            daemons.add(FleetNode.start(dir, NODES[i], gateways[i], upstreamPort, """
                      redis: %s
                      keyPrefix: "%s"
                      onUnavailable: closed
                      opTimeout: 2s
                      heartbeat: 1s
                    """.formatted(fleetRedis(), prefix)));
        }
    }

    @AfterAll
    void stop() throws Exception {
        for (Daemon d : daemons) {
            int code = d.stop();
            d.err.stream().filter(l -> l.contains("fleet")).limit(20).forEach(l -> System.out.println("  daemon: " + l));
            assertEquals(0, code);
        }
        if (upstream != null) {
            upstream.close();
        }
        if (redis != null) {
            for (Process p : redis.values()) {
                FleetNode.stop(p, true);
            }
        }
        io.keywarden.tests.support.FleetNode.removeNodes(dir, NODES);
    }

    String spend(int node) {
        Proc.Result r = Proc.as(1001, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", "-H",
                "Content-Type: application/json", "--data-binary",
                "{\"model\":\"gpt-4.1-mini\",\"max_tokens\":20,\"messages\":[]}",
                "http://127.0.0.1:" + gateways[node] + "/openai/v1/chat/completions");
        return r.out().trim();
    }

    boolean refusedOn(int node) {
        return Proc.as(1002, "cat", dir.resolve(NODES[node]).resolve("mnt/openai/api_key").toString()).err()
                .contains("Permission denied");
    }

    static String cli(int port, String... args) {
        List<String> cmd = new ArrayList<>(List.of("redis-cli", "-p", Integer.toString(port)));
        cmd.addAll(List.of(args));
        return Proc.run(cmd.toArray(String[]::new)).out().trim();
    }

    static long replOffset(String info, String field) {
        return info.lines().filter(l -> l.startsWith(field)).mapToLong(l -> Long.parseLong(l.substring(field.length()).trim()))
                .findFirst().orElse(-1);
    }

    @Test
    void budgetsAndBlocksHoldAcrossAFailover() throws Exception {
        StringBuilder before = new StringBuilder();
        for (int i = 0; i < 4; i++) {
            before.append(spend(i % 2)).append(' ');
        }
        assertEquals("200 200 200 200", before.toString().trim(), "four requests fit the budget of " + BUDGET);
        String hourKey = prefix + "{" + SPENDER + "}:tok:h:" + (System.currentTimeMillis() / 3_600_000);
        int master = masterOf(hourKey);
        int replica = redis.keySet().stream().filter(p -> p != master && cli(p, "role").startsWith("slave")
                && cli(p, "info", "replication").contains("master_port:" + master)).findFirst().orElseThrow();
        String spent = cli(master, "get", hourKey);
        assertEquals("200", spent, "the cluster counted the four requests' 200 tokens");
        // Replication is asynchronous: what the master took before it died may be lost. The test kills it
        // once its replica has all of it (the README says what a failover can lose).
        long offset = replOffset(cli(master, "info", "replication"), "master_repl_offset:");
        Await.until(Duration.ofSeconds(10), () -> replOffset(cli(replica, "info", "replication"), "slave_repl_offset:")
                >= offset, () -> "the replica has what the master took");
        FleetNode.stop(redis.get(master), true);
        long killed = System.nanoTime();
        Await.until(Duration.ofSeconds(30), () -> cli(replica, "role").startsWith("master"),
                () -> "replica " + replica + " took over from master " + master);
        System.out.printf("fleet %s: master %d killed, replica %d promoted after %.1f s%n", getClass().getSimpleName(), master, replica,
                (System.nanoTime() - killed) / 1e9);
        // Guarded requests refused (503, onUnavailable: closed) while the client finds the new master, then served.
        StringBuilder after = new StringBuilder();
        int ok = 0;
        int unavailable = 0;
        long deadline = System.nanoTime() + Duration.ofSeconds(40).toNanos();
        String last = "";
        long firstServed = 0;
        long lastRefused = 0;
        long promoted = System.nanoTime();
        while (!last.equals("429") && System.nanoTime() < deadline) {
            last = spend(ok % 2);
            if (firstServed == 0 && last.equals("200")) {
                firstServed = System.nanoTime();
            }
            if (last.equals("503")) {
                lastRefused = System.nanoTime();
            }
            after.append(last).append(' ');
            ok += last.equals("200") ? 1 : 0;
            unavailable += last.equals("503") ? 1 : 0;
        }
        System.out.printf("fleet %s: guarded requests served again %.1f s after the promotion, the last refused (503)"
                + " %.1f s after it%n", getClass().getSimpleName(), firstServed == 0 ? -1 : (firstServed - promoted) / 1e9,
                lastRefused == 0 ? 0 : (lastRefused - promoted) / 1e9);
        System.out.printf("fleet %s: after the failover %s(billed %d of %d)%n", getClass().getSimpleName(), after, billed.get(), BUDGET);
        assertEquals("429", last, "the budget refuses again after the failover: " + after);
        assertTrue(ok >= 1, "requests are served after the failover: " + after);
        assertTrue(billed.get() <= BUDGET, "billed " + billed.get() + " <= " + BUDGET + " across the failover");
        assertTrue(after.toString().replace("503 ", "").replace("200 ", "").trim().equals("429"),
                "only 503 (finding the new master), 200 and the final 429: " + after);

        // The kill switch, its hash now on the promoted replica.
        assertTrue(!refusedOn(1), "node b serves workload other");
        Proc.Result block = Daemon.cli("revoke", "--admin-socket", dir.resolve("a/admin/admin.sock").toString(),
                "--spiffe-id", "spiffe://example.org/other", "--block", "--fleet", "--reason", "failover test");
        assertEquals(0, block.code(), block.out() + block.err());
        Await.until(Duration.ofSeconds(10), () -> refusedOn(1), () -> "the block reached node b after the failover");
        assertTrue(cli(replica, "hexists", prefix + "blocks", "spiffe://example.org/other").equals("1"),
                "the block is stored on the promoted master");
        Proc.Result unblock = Daemon.cli("unblock", "--admin-socket", dir.resolve("b/admin/admin.sock").toString(),
                "--spiffe-id", "spiffe://example.org/other", "--fleet");
        assertEquals(0, unblock.code(), unblock.out() + unblock.err());
        Await.until(Duration.ofSeconds(10), () -> !refusedOn(0), () -> "the unblock reached node a");
    }
}
