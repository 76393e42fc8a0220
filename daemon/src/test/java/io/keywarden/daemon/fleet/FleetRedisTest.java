package io.keywarden.daemon.fleet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.keywarden.testkit.Await;
import io.vertx.core.Vertx;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The fleet's scripts against the real redis-server (Debian's), on a loopback port of its own. */
class FleetRedisTest {
    static Process server;
    static int port;
    static Vertx vertx;
    static FleetRedis redis;

    @BeforeAll
    static void start() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/redis-server")), "needs Debian's redis-server");
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        server = new ProcessBuilder("/usr/bin/redis-server", "--port", Integer.toString(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no").redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        vertx = Vertx.vertx();
        redis = new FleetRedis(vertx, new FleetSettings(FleetSettings.RedisTarget.standalone(URI.create("redis://127.0.0.1:" + port)), Optional.empty(),
                Optional.empty(), "t:", FleetSettings.Unavailable.LOCAL, Duration.ofSeconds(5), 4096, Duration.ofSeconds(5)),
                "n1");
        awaitWarm(redis);
    }

    /** Waits (20 s at most) until {@code r} reaches its server: the server process starts listening a little later. */
    static void awaitWarm(FleetRedis r) throws Exception {
        Await.until(Duration.ofSeconds(20), () -> {
            get(r.warm());
            return true;
        }, () -> "the fleet's Redis did not answer");
    }

    @AfterAll
    static void stop() throws Exception {
        if (redis != null) {
            redis.close();
        }
        if (vertx != null) {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
        if (server != null) {
            server.destroy();
            server.waitFor(10, TimeUnit.SECONDS);
        }
    }

    static <T> T get(CompletionStage<T> f) throws Exception {
        return f.toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    static String cli(String... args) throws Exception {
        java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of("redis-cli", "-p", Integer.toString(port)));
        cmd.addAll(java.util.List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes()).trim();
        p.waitFor(10, TimeUnit.SECONDS);
        return out;
    }

    @Test
    void reservationsAreCheckedAgainstUseAndWhatIsInFlightThenSettled() throws Exception {
        String id = "spiffe://t/a";
        long now = System.currentTimeMillis();
        assertTrue(get(redis.reserve(id, 1, 1, 400, 1000, -1, "r1", 60_000, now)).admitted());
        assertTrue(get(redis.reserve(id, 1, 1, 400, 1000, -1, "r2", 60_000, now)).admitted());
        FleetRedis.ReserveAnswer third = get(redis.reserve(id, 1, 1, 400, 1000, -1, "r3", 60_000, now));
        assertFalse(third.admitted(), "800 in flight + 400 > 1000");
        assertEquals("h", third.window());
        assertEquals(800, third.reserved());
        get(redis.settle(id, 1, 1, "r1", 50, 168));
        assertEquals(new FleetRedis.Totals(100, 100), get(redis.settle(id, 1, 1, "r2", 50, 168)));
        FleetRedis.ReserveAnswer after = get(redis.reserve(id, 1, 1, 900, 1000, -1, "r4", 60_000, now));
        assertTrue(after.admitted(), "100 used + 900 fits: " + after);
        assertEquals(100, after.used());
        assertEquals("{t:{spiffe://t/a}:tok:h:1", "{" + redis.budgetKeys(id, 1, 1).get(0), "hash-tagged per SPIFFE ID");
    }

    @Test
    void aDeadNodesReservationsExpireAndHostileValuesAreDropped() throws Exception {
        String id = "spiffe://t/b";
        long now = System.currentTimeMillis();
        assertTrue(get(redis.reserve(id, 2, 2, 900, 1000, -1, "dead", 1_000, now)).admitted());
        assertFalse(get(redis.reserve(id, 2, 2, 900, 1000, -1, "x", 1_000, now)).admitted());
        assertTrue(get(redis.reserve(id, 2, 2, 900, 1000, -1, "y", 1_000, now + 2_000)).admitted(),
                "the first reservation's lifetime ended: it no longer counts");
        // Hostile writes: the hour window as a list, garbage reservations.
        String keys = redis.budgetKeys("spiffe://t/c", 3, 3).get(0);
        cli("RPUSH", keys, "x");
        cli("HSET", redis.budgetKeys("spiffe://t/c", 3, 3).get(2), "evil", "not-a-number", "evil2", "99999999:x");
        FleetRedis.ReserveAnswer a = get(redis.reserve("spiffe://t/c", 3, 3, 10, 1000, -1, "ok", 60_000, now));
        assertTrue(a.admitted(), "malformed values count as nothing and are removed: " + a);
        assertEquals(0, a.reserved());
        get(redis.settle("spiffe://t/c", 3, 3, "ok", 10, 168));
        assertEquals("10", cli("GET", keys));
    }

    @Test
    void blocksAreStoredAndMalformedOnesRefused() throws Exception {
        get(redis.publish("spiffe://t/blocked", "test", 1234));
        assertEquals("test", get(redis.blocks()).get("spiffe://t/blocked").reason());
        cli("HSET", redis.blocksKey(), "spiffe://t/evil", "not json");
        cli("HSET", redis.blocksKey(), "spiffe://t/evil2", "{\"op\":\"block\",\"spiffe_id\":\"nope\",\"at\":1}");
        var all = get(redis.blocks());
        assertEquals(1, all.size(), "only the well-formed block: " + all);
        assertTrue(FleetRedis.parse("x".repeat(FleetRedis.MAX_BLOCK_JSON + 1)).isEmpty());
        get(redis.publish("spiffe://t/blocked", null, 2000));
        assertTrue(get(redis.blocks()).isEmpty());
    }

    @Test
    void aNodeSilentForThreeHeartbeatsIsStale() throws Exception {
        FleetRedis quick = new FleetRedis(vertx, new FleetSettings(FleetSettings.RedisTarget.standalone(URI.create("redis://127.0.0.1:" + port)), Optional.empty(),
                Optional.empty(), "inv:", FleetSettings.Unavailable.LOCAL, Duration.ofMillis(200), 4096,
                Duration.ofSeconds(5)), "n2");
        try {
            var status = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
            status.putArray("leases").addObject().put("workload", "w").put("fingerprint", "sha256:0123456789abcdef");
            get(quick.heartbeat(status, System.currentTimeMillis()));
            var live = get(quick.inventory());
            assertEquals(1, live.size());
            assertFalse(live.get(0).path("stale").asBoolean(), live.toString());
            assertEquals("w", live.get(0).path("leases").get(0).path("workload").asText());
            // Silent from now on: stale once three heartbeats (600 ms) pass, well within 10 s.
            long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            var later = get(quick.inventory());
            while (!later.get(0).path("stale").asBoolean() && System.nanoTime() < end) {
                later = get(quick.inventory());
            }
            assertTrue(later.get(0).path("stale").asBoolean(), "silent for three heartbeats: " + later);
            assertEquals("n2", later.get(0).path("node").asText());
        } finally {
            quick.close();
        }
    }

    @Test
    void requestsPerMinuteAreCountedFleetWide() throws Exception {
        String id = "spiffe://t/rpm";
        long now = System.currentTimeMillis();
        assertTrue(get(redis.reserve(id, 5, 5, 0, -1, -1, 2, "q1", 60_000, now)).admitted());
        assertTrue(get(redis.reserve(id, 5, 5, 0, -1, -1, 2, "q2", 60_000, now)).admitted());
        FleetRedis.ReserveAnswer third = get(redis.reserve(id, 5, 5, 0, -1, -1, 2, "q3", 60_000, now));
        assertFalse(third.admitted());
        assertEquals("m", third.window());
        assertEquals(2, third.used());
        assertTrue(get(redis.reserve(id, 5, 5, 0, -1, -1, 2, "q4", 60_000, now + 60_000)).admitted(), "a new minute");
    }

    @Test
    void aLateSensorsSlotIsCountedOnceForTheFleet() throws Exception {
        String id = "spiffe://t/usage";
        FleetRedis other = new FleetRedis(vertx, new FleetSettings(FleetSettings.RedisTarget.standalone(URI.create(
                "redis://127.0.0.1:" + port)), Optional.empty(), Optional.empty(), "t:", FleetSettings.Unavailable.LOCAL,
                Duration.ofSeconds(5), 4096, Duration.ofSeconds(5)), "n2");
        try {
            FleetRedis.SlotCount first = get(redis.countSlot(id, 7, 7, "60/key_1", 100, 20, 2, 168));
            assertEquals(120, first.in() + first.out());
            assertEquals(new FleetRedis.Totals(120, 120), first.totals());
            FleetRedis.SlotCount again = get(other.countSlot(id, 7, 7, "60/key_1", 100, 20, 2, 168));
            assertEquals(0, again.in() + again.out() + again.requests(), "another node (or a restart) reporting the same"
                    + " totals counts nothing");
            FleetRedis.SlotCount grew = get(other.countSlot(id, 7, 7, "60/key_1", 150, 20, 3, 168));
            assertEquals(50, grew.in());
            assertEquals(1, grew.requests());
            assertEquals(170, grew.totals().hour());
            FleetRedis.SlotCount shrank = get(redis.countSlot(id, 7, 7, "60/key_1", 10, 0, 0, 168));
            assertEquals(0, shrank.in() + shrank.out(), "a late answer that is lower takes nothing back");
            cli("HSET", "t:{" + id + "}:slots", "120/key_1", "x:y:z");
            assertEquals(5, get(redis.countSlot(id, 7, 7, "120/key_1", 5, 0, 1, 168)).in(), "a malformed slot counts from 0");
        } finally {
            other.close();
        }
    }

    @Test
    void theAnomalyBaselineIsTheFleetsCompleteHours() throws Exception {
        String id = "spiffe://t/baseline";
        assertEquals(new FleetRedis.Baseline(0, 0), get(redis.baseline(id, 100, 3)), "no history: no baseline");
        get(redis.settle(id, 97, 4, "", 300, 3));
        assertEquals(new FleetRedis.Baseline(0, 0), get(redis.baseline(id, 97, 3)), "the first hour is not complete");
        get(redis.settle(id, 98, 4, "", 90, 3));
        // Hour 99 had no use: it counts as zero.
        FleetRedis.Baseline b = get(redis.baseline(id, 100, 3));
        assertEquals(3, b.hours());
        assertEquals(390, b.tokens());
        assertEquals(130.0, b.mean());
        assertEquals(new FleetRedis.Baseline(2, 390), get(redis.baseline(id, 99, 3)), "history begins at hour 97");
        cli("HSET", redis.historyKey(id), "98", "lots");
        assertEquals(300, get(redis.baseline(id, 100, 3)).tokens(), "a malformed hour counts as zero");
        get(redis.settle(id, 98, 4, "", 10, 3));
        assertEquals("10", cli("HGET", redis.historyKey(id), "98"), "and is replaced at the next count");
        for (long h = 101; h < 110; h++) {
            get(redis.settle(id, h, 4, "", 1, 3));
        }
        long fields = Long.parseLong(cli("HLEN", redis.historyKey(id)));
        assertTrue(fields <= 3 + 3, "old hours are pruned: " + fields + " fields");
    }

    static void run(Path dir, String... cmd) throws Exception {
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, String.join(" ", cmd) + ": " + out);
    }

    @Test
    void aTlsRedisWithAnAclUserIsReachedWithThePasswordFromAFile(@org.junit.jupiter.api.io.TempDir Path dir)
            throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/openssl")), "needs openssl");
        // A private CA and a server certificate for 127.0.0.1.
        run(dir, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days",
                "2", "-subj", "/CN=keywarden-test-ca");
        run(dir, "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr", "-subj",
                "/CN=127.0.0.1");
        Files.writeString(dir.resolve("ext"), "subjectAltName=IP:127.0.0.1\n");
        run(dir, "openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "srv.crt", "-days", "2", "-extfile", "ext");
        int tlsPort;
        try (ServerSocket s = new ServerSocket(0)) {
            tlsPort = s.getLocalPort();
        }
        Process tls = new ProcessBuilder("/usr/bin/redis-server", "--port", "0", "--tls-port", Integer.toString(tlsPort),
                "--bind", "127.0.0.1", "--tls-cert-file", "srv.crt", "--tls-key-file", "srv.key", "--tls-ca-cert-file",
                "ca.crt", "--tls-auth-clients", "no", "--save", "", "--appendonly", "no", "--user", "default", "off",
                "--user", "keywarden", "on", ">s3cret-pass", "~kwtls:*", "&kwtls:*", "+@all")
                .directory(dir.toFile()).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        Files.writeString(dir.resolve("password"), "s3cret-pass\n");
        Files.writeString(dir.resolve("wrong"), "not-it\n");
        URI uri = URI.create("rediss://127.0.0.1:" + tlsPort);
        java.util.function.BiFunction<String, Optional<Path>, FleetRedis> client = (pw, ca) -> {
            try {
                return new FleetRedis(vertx, new FleetSettings(FleetSettings.RedisTarget.standalone(uri), Optional.of("keywarden"),
                        Optional.of(dir.resolve(pw)), "kwtls:", FleetSettings.Unavailable.CLOSED, Duration.ofSeconds(5), 4096,
                        Duration.ofSeconds(5), ca), "tls-node");
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        };
        try {
            FleetRedis ok = client.apply("password", Optional.of(dir.resolve("ca.crt")));
            try {
                awaitWarm(ok);
                assertTrue(get(ok.reserve("spiffe://t/tls", 9, 9, 10, 100, -1, "r1", 60_000, System.currentTimeMillis()))
                        .admitted(), "scripts run over TLS as the ACL user, on its own key prefix");
            } finally {
                ok.close();
            }
            for (FleetRedis bad : new FleetRedis[] {client.apply("wrong", Optional.of(dir.resolve("ca.crt"))),
                    client.apply("password", Optional.empty())}) {
                try {
                    org.junit.jupiter.api.Assertions.assertThrows(Exception.class, () -> get(bad.warm()),
                            "a wrong password, or a CA the client does not trust, does not reach Redis");
                    assertFalse(bad.isUp());
                } finally {
                    bad.close();
                }
            }
        } finally {
            tls.destroy();
            tls.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
