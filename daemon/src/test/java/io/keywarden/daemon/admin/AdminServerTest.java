package io.keywarden.daemon.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.keywarden.issuer.dev.DevIssuer;
import io.keywarden.daemon.lifecycle.LeaseEvents;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.daemon.lifecycle.SystemScheduler;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.testkit.Await;
import io.vertx.core.Vertx;
import java.io.InputStream;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The admin API on Vert.x over its Unix socket: concurrent, bounded, with a read deadline. */
class AdminServerTest {
    @TempDir
    Path dir;
    private Vertx vertx;
    private SystemScheduler scheduler;
    private LeaseManager leases;
    private AdminServer server;
    private Path sock;
    private final List<String> recorded = new CopyOnWriteArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        Policy policy = PolicyLoader.parse("""
                keys: {openai: {}}
                workloads:
                  - {name: alice, spiffeId: "spiffe://t/alice", selectors: ["unix:uid:1001"], keys: [openai]}
                """, "p.yaml");
        vertx = Vertx.vertx(io.keywarden.daemon.net.ChannelFd.options(1, 2));
        scheduler = new SystemScheduler(Clock.systemUTC(), 2);
        leases = new LeaseManager(new DevIssuer(Duration.ofMinutes(5), Clock.systemUTC()), () -> policy, Clock.systemUTC(),
                scheduler, new Random(1), LeaseEvents.NONE, p -> true);
        sock = dir.resolve("admin/admin.sock");
        server = AdminServer.start(vertx, sock, leases, () -> policy, Map.of("node", "n1"), io.keywarden.daemon.blocks.BlockList.load(dir.resolve("b.json"), leases.killSwitch(), () -> policy),
                (event, fields) -> recorded.add(event.wire() + " " + fields.get("operator")));
    }

    @AfterEach
    void tearDown() throws Exception {
        server.close();
        leases.shutdown(false);
        scheduler.close();
        vertx.close().await(5, TimeUnit.SECONDS);
    }

    private static JsonNode ask(Path sock, String line) throws Exception {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
            c.write(ByteBuffer.wrap(line.getBytes(StandardCharsets.UTF_8)));
            return AdminServer.JSON.readTree(Channels.newInputStream(c));
        }
    }

    @Test
    void theSocketIsOwnerOnlyAndTheOperatorsUidIsRecorded() throws Exception {
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(sock)));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(sock.getParent())));
        JsonNode status = ask(sock, "{\"op\":\"status\"}\n");
        assertTrue(status.path("ok").asBoolean(), status.toString());
        assertEquals("n1", status.path("node").asText());
        JsonNode r = ask(sock, "{\"op\":\"revoke\",\"workload\":\"alice\",\"block\":true,\"reason\":\"test\"}\n");
        assertTrue(r.path("ok").asBoolean(), r.toString());
        String uid = "uid " + new com.sun.security.auth.module.UnixSystem().getUid();
        assertTrue(recorded.get(0).startsWith("admin.block " + uid), recorded.toString());
        assertEquals(Map.of("alice", "operator (" + recorded.get(0).substring("admin.block ".length()) + "): test"),
                leases.blocked());
    }

    @Test
    void badAndOversizedRequestsGetAnErrorNotACrash() throws Exception {
        assertEquals("unknown op 'dance'", ask(sock, "{\"op\":\"dance\"}\n").path("error").asText());
        assertTrue(ask(sock, "not json\n").path("error").asText().startsWith("bad request: "));
        JsonNode big = ask(sock, "{\"op\":\"status\",\"pad\":\"" + "x".repeat(70_000) + "\"}\n");
        assertEquals("request larger than 65536 bytes", big.path("error").asText());
        assertTrue(ask(sock, "{\"op\":\"status\"}\n").path("ok").asBoolean(), "still serving");
    }

    @Test
    void aSilentClientIsDroppedAfterTheDeadlineAndDoesNotDelayOthers() throws Exception {
        try (SocketChannel silent = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
            long t0 = System.nanoTime();
            assertTrue(ask(sock, "{\"op\":\"status\"}\n").path("ok").asBoolean());
            assertTrue(System.nanoTime() - t0 < 1_000_000_000L, "answered while a client sat idle");
            InputStream in = Channels.newInputStream(silent);
            long t1 = System.nanoTime();
            assertEquals(-1, in.read(), "the server hung up");
            long waited = (System.nanoTime() - t1) / 1_000_000;
            assertTrue(waited > 1_000 && waited < 4_000, "after the 2 s read deadline, not " + waited + " ms");
        }
    }

    @Test
    void atMost64ClientsAtOnce() throws Exception {
        List<SocketChannel> idle = new ArrayList<>();
        try {
            for (int i = 0; i < 64; i++) {
                idle.add(SocketChannel.open(UnixDomainSocketAddress.of(sock)));
            }
            Await.until(Duration.ofSeconds(20), () -> server.clientsConnected() == 64,
                    () -> server.clientsConnected() + " of 64 connections counted");
            try (SocketChannel extra = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
                int read;
                try {
                    extra.write(ByteBuffer.wrap("{\"op\":\"status\"}\n".getBytes(StandardCharsets.UTF_8)));
                    read = Channels.newInputStream(extra).read();
                } catch (java.io.IOException e) {
                    read = -1;  // reset by the server: refused as well
                }
                assertEquals(-1, read, "the 65th is closed at once, unanswered");
            }
        } finally {
            for (SocketChannel c : idle) {
                c.close();
            }
        }
        // The idle clients' slots are freed as the server notices them go (a refused ask is "not yet").
        io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10),
                () -> !ask(sock, "{\"op\":\"status\"}\n").isMissingNode(), () -> "not served again once they left");
    }
}
