package io.keywarden.tests.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Upgrades that keep the mount: {@code keywarden run --takeover} takes the FUSE connection and
 * the leases from the running daemon while an agent of another uid re-opens its key every 20 ms.
 */
class HandoverIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private Path dir;
    private Path mnt;
    private Path ledger;
    private Path config;
    private Path admin;

    @BeforeEach
    void setUp() throws IOException {
        Requirements.rootAndFuse();
        dir = Files.createTempDirectory("kw-handover-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        mnt = dir.resolve("mnt");
        ledger = dir.resolve("audit.jsonl");
        admin = dir.resolve("admin/admin.sock");
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai: {issuer: dev}
                workloads:
                  - name: agent
                    spiffeId: spiffe://example.org/agent
                    selectors: [unix:uid:1001]
                    keys: [openai]
                  - name: stopped
                    spiffeId: spiffe://example.org/stopped
                    selectors: [unix:uid:1002]
                    keys: [openai]
                """);
        config = writeConfig("config.yaml", mnt);
        try (InputStream in = HandoverIT.class.getResourceAsStream("/handover/reader.py")) {
            Files.copy(in, dir.resolve("reader.py"));
        }
    }

    private int opsPort;

    private Path writeConfig(String name, Path mount) throws IOException {
        opsPort = Ports.free();
        return Files.writeString(dir.resolve(name), """
                node: it-node
                policy: policy.yaml
                identity: {provider: dev, audience: vault}
                issuers:
                  dev: {type: dev, ttl: 10m}
                delivery: {mode: fuse, path: %s}
                audit: {file: audit.jsonl}
                ops: {listen: "127.0.0.1:%d"}
                admin: {socket: %s}
                revokeOnShutdown: true
                """.formatted(mount, opsPort, admin));
    }

    @AfterEach
    void tearDown() throws Exception {
        if (dir == null) {
            return;
        }
        // Also the tmpfs a daemon killed by a failing test would leave behind.
        for (Path m : List.of(mnt, dir.resolve("files"))) {
            if (Mounts.at(m).isPresent()) {
                Mounts.detach(m);
            }
        }
        Proc.run("rm", "-rf", dir.toString());
    }

    /**
     * The reader as uid 1001 for {@code seconds}, in the background; its JSON report. Returns once it
     * has read ten times (or it ended: its report tells why).
     */
    private CompletableFuture<JsonNode> reader(double seconds) throws Exception {
        Path marks = Files.createDirectories(dir.resolve("marks"));
        Files.setPosixFilePermissions(marks, java.nio.file.attribute.PosixFilePermissions.fromString("rwxrwxrwx"));
        Path started = marks.resolve("started-" + System.nanoTime());
        CompletableFuture<JsonNode> report = CompletableFuture.supplyAsync(() -> {
            Proc.Result r = Proc.as(1001, "/usr/bin/python3", dir.resolve("reader.py").toString(),
                    mnt.resolve("openai/api_key").toString(), Double.toString(seconds), started.toString());
            try {
                return JSON.readTree(r.out().isBlank() ? "{\"failed\":\"" + r.err().replace('"', '\'') + "\"}" : r.out());
            } catch (IOException e) {
                throw new AssertionError("reader: " + r.out() + r.err());
            }
        });
        io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(30), () -> Files.exists(started) || report.isDone(),
                () -> "the reader did not start reading");
        return report;
    }

    /** Watches /proc/self/mountinfo every 5 ms; counts the moments the mount is missing. */
    private static final class MountWatch implements AutoCloseable {
        final AtomicInteger missing = new AtomicInteger();
        final AtomicInteger looks = new AtomicInteger();
        private final AtomicBoolean stop = new AtomicBoolean();
        private final Thread t;

        MountWatch(Path mnt) {
            t = new Thread(() -> {
                while (!stop.get()) {
                    try {
                        if (Mounts.at(mnt).isEmpty()) {
                            missing.incrementAndGet();
                        }
                        looks.incrementAndGet();
                        Thread.sleep(5);  // the watch's sampling period
                    } catch (Exception e) {
                        missing.incrementAndGet();
                    }
                }
            });
            t.start();
        }

        @Override
        public void close() throws InterruptedException {
            stop.set(true);
            t.join();
        }
    }

    private String fingerprintAs1001() {
        Proc.Result r = Proc.as(1001, "/usr/bin/python3", "-c", "import hashlib,sys;"
                + "print('sha256:'+hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest()[:16])",
                mnt.resolve("openai/api_key").toString());
        assertEquals(0, r.code(), r.err());
        return r.out().trim();
    }

    @Test
    void aTakeoverKeepsTheMountTheLeaseAndEveryOpenWorking() throws Exception {
        try (Daemon old = Daemon.start(Map.of(), "run", "--config", config.toString())) {
            old.awaitOut("serving KeyFS", 30);
            String before = fingerprintAs1001();
            Proc.Result block = Daemon.cli("revoke", "--admin-socket", admin.toString(), "--workload", "stopped", "--block",
                    "--reason", "handover test");
            assertEquals(0, block.code(), block.err());
            CompletableFuture<JsonNode> reading = reader(7);
            JsonNode report;
            long tookOverMs;
            try (MountWatch watch = new MountWatch(mnt)) {
                long t0 = System.nanoTime();
                try (Daemon successor = Daemon.start(Map.of(), "run", "--config", config.toString(), "--takeover")) {
                    successor.awaitOut("took over", 60);
                    tookOverMs = (System.nanoTime() - t0) / 1_000_000;
                    assertEquals(0, old.waitFor(30), "the old daemon exits 0 after the handover; stderr " + old.err);
                    assertFalse(ProcessHandle.of(old.pid()).map(ProcessHandle::isAlive).orElse(false), "the old process is gone");
                    report = reading.get(60, TimeUnit.SECONDS);
                    watch.close();
                    assertEquals(0, watch.missing.get(), "the mount left /proc/self/mountinfo during the takeover ("
                            + watch.looks.get() + " looks)");
                    assertEquals(before, fingerprintAs1001(), "the same key (the same lease) after the takeover");
                    assertTrue(Proc.as(1002, "cat", mnt.resolve("openai/api_key").toString()).err()
                            .contains("Permission denied"), "a blocked workload stays blocked across the takeover");
                    String text = Files.readString(ledger);
                    assertTrue(text.contains("\"event\":\"daemon.handover\""), text);
                    assertTrue(text.contains("took over from pid " + old.pid()), text);
                    assertFalse(text.contains("\"event\":\"key.revoked\""), "nothing revoked by the handover: " + text);
                    assertEquals(1, text.split("\"event\":\"key.issued\"", -1).length - 1, "issued once, before: " + text);
                    // Stopping for good (not an upgrade) still unmounts and revokes.
                    assertEquals(0, successor.stop());
                    assertTrue(Mounts.at(mnt).isEmpty(), "unmounted at the final stop");
                    assertTrue(Files.readString(ledger).contains("\"event\":\"key.revoked\""), "revoked at the final stop");
                    Proc.Result verify = Daemon.cli("audit", "verify", ledger.toString());
                    assertEquals(0, verify.code(), "one hash chain across both daemons: " + verify.out() + verify.err());
                }
            }
            assertFalse(report.has("failed"), report.toString());
            assertEquals(0, report.get("errors").size(), "errors seen by the reader: " + report);
            assertEquals(List.of(before), JSON.convertValue(report.get("keys"), List.class), report.toString());
            assertEquals(true, report.get("held_same").asBoolean(false), "a descriptor held across the takeover reads on: "
                    + report);
            System.out.printf("handover: %d opens every 20 ms across it, 0 errors; open latency p50 %.2f ms, p99 %.2f ms,"
                            + " max %.1f ms (the gap in service); successor serving %d ms after it started%n",
                    report.get("opens").asInt(), report.get("p50_ms").asDouble(), report.get("p99_ms").asDouble(),
                    report.get("max_ms").asDouble(), tookOverMs);
        }
    }

    @Test
    void aSuccessorThatCannotServeLeavesTheOldDaemonServing() throws Exception {
        try (Daemon old = Daemon.start(Map.of(), "run", "--config", config.toString())) {
            old.awaitOut("serving KeyFS", 30);
            String before = fingerprintAs1001();
            CompletableFuture<JsonNode> reading = reader(5);
            // Configured for another mount point: it receives the state, cannot serve it, and gives it back.
            Path wrong = writeConfig("wrong.yaml", dir.resolve("elsewhere"));
            try (Daemon successor = Daemon.start(Map.of(), "run", "--config", wrong.toString(), "--takeover")) {
                assertTrue(successor.waitFor(60) != 0, "the successor fails");
                assertTrue(String.join("\n", successor.err).contains("a takeover keeps the mount where it is"),
                        String.join("\n", successor.err));
            }
            JsonNode report = reading.get(60, TimeUnit.SECONDS);
            assertEquals(0, report.get("errors").size(), "errors seen by the reader: " + report);
            assertTrue(old.isAlive(), "the old daemon serves again");
            assertEquals(before, fingerprintAs1001());
            String text = Files.readString(ledger);
            assertFalse(text.contains("\"event\":\"key.revoked\""), text);
            assertEquals(0, old.stop());
            assertTrue(Files.readString(ledger).contains("\"event\":\"key.revoked\""), "revoked at the final stop");
        }
    }

    @Test
    void inAPodTheOldDaemonIdlesAnsweringHealthUntilStopped() throws Exception {
        int oldPort = opsPort;
        try (Daemon old = Daemon.start(Map.of(), "run", "--config", config.toString(), "--after-handover", "idle")) {
            old.awaitOut("serving KeyFS", 30);
            String before = fingerprintAs1001();
            // Its own ops address, as a pod has its own network namespace.
            Path next = writeConfig("next.yaml", mnt);
            try (Daemon successor = Daemon.start(Map.of(), "run", "--config", next.toString(), "--takeover")) {
                successor.awaitOut("took over", 60);
                old.awaitOut("idle until stopped", 30);
                assertTrue(old.isAlive(), "a pod's container that exits is restarted: the old one stays");
                io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10),
                        () -> io.keywarden.tests.support.Http.get("http://127.0.0.1:" + oldPort + "/healthz").equals("ok\n"),
                        () -> "the idle daemon answers its liveness probe");
                String ready = io.keywarden.tests.support.Http.get("http://127.0.0.1:" + oldPort + "/readyz");
                assertTrue(ready.contains("\"ready\":false") && ready.contains("handed over to pid " + successor.pid()), ready);
                assertEquals(before, fingerprintAs1001(), "the successor serves the same lease");
                assertEquals(0, old.stop(), "SIGTERM ends the idle daemon");
                assertTrue(Mounts.at(mnt).isPresent(), "the idle daemon's stop leaves the mount to the successor");
                assertEquals(before, fingerprintAs1001());
                assertFalse(Files.readString(ledger).contains("\"event\":\"key.revoked\""), "nothing revoked");
                assertEquals(0, successor.stop());
            }
        }
    }

    @Test
    void aMountServedOverIoUringIsNotTakenOverAndKeepsServing() throws Exception {
        try (var uring = io.keywarden.tests.support.FuseUringSwitch.on();
             Daemon old = Daemon.start(Map.of(), "run", "--config", config.toString())) {
            old.awaitOut("serving", 30);
            assertTrue(String.join("\n", old.err).contains("requests through FUSE io_uring")
                    || String.join("\n", old.out).contains("requests through FUSE io_uring"), "the daemon says it uses the rings");
            String before = fingerprintAs1001();
            try (Daemon successor = Daemon.start(Map.of(), "run", "--config", config.toString(), "--takeover")) {
                assertEquals(2, successor.waitFor(60), "refused: " + successor.err);
                assertTrue(String.join("\n", successor.err).contains("served over FUSE io_uring"),
                        String.join("\n", successor.err));
            }
            assertTrue(old.isAlive(), "nothing stopped");
            assertEquals(before, fingerprintAs1001(), "still serving the same key");
            assertTrue(Files.readString(ledger).contains("\"event\":\"handover.refused\""));
            assertEquals(0, old.stop());
        }
    }

    @Test
    void aTmpfsDaemonRefusesAndKeepsServing() throws Exception {
        Path files = dir.resolve("files");
        Path tmpfsConfig = Files.writeString(dir.resolve("tmpfs.yaml"), Files.readString(config)
                .replace("delivery: {mode: fuse, path: " + mnt + "}", "delivery: {mode: tmpfs, path: " + files + "}"));
        assertTrue(Files.readString(tmpfsConfig).contains("mode: tmpfs"));
        try (Daemon old = Daemon.start(Map.of(), "run", "--config", tmpfsConfig.toString())) {
            old.awaitOut("serving", 30);
            Path key = files.resolve("agent/openai/api_key");
            io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10),
                    () -> Proc.as(1001, "cat", key.toString()).out().startsWith("sk-dev-"), () -> "tmpfs publishes the key");
            try (Daemon successor = Daemon.start(Map.of(), "run", "--config", tmpfsConfig.toString(), "--takeover")) {
                assertEquals(2, successor.waitFor(60), "refused: " + successor.err);
                assertTrue(String.join("\n", successor.err).contains("refused the handover: this daemon serves tmpfs files"),
                        String.join("\n", successor.err));
            }
            assertTrue(old.isAlive(), "nothing stopped");
            assertTrue(Proc.as(1001, "cat", key.toString()).out().startsWith("sk-dev-"), "still serving");
            assertTrue(Files.readString(ledger).contains("\"event\":\"handover.refused\""));
            assertEquals(0, old.stop());
        }
    }

    @Test
    void onlyRootMayAskAndWithoutADaemonTakeoverStartsNormally() throws Exception {
        try (Daemon d = Daemon.start(Map.of(), "run", "--config", config.toString(), "--takeover")) {
            d.awaitOut("serving KeyFS", 30);
            assertTrue(String.join("\n", d.out).contains("no daemon answers on"), String.join("\n", d.out));
            Path sock = admin.resolveSibling("handover.sock");
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(sock)));
            // The workload's own uid, trying the handover socket: refused by the kernel (mode 0600, root's).
            Proc.Result r = Proc.as(1001, "/usr/bin/python3", "-c", "import socket,sys\n"
                    + "s=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1]); print('connected')\n"
                    + "except OSError as e:\n print('errno', e.errno)", sock.toString());
            assertTrue(r.out().contains("errno 13"), r.out() + r.err());
            // Even with the socket's mode loosened, SO_PEERCRED says uid 1001: refused, nothing stops.
            Files.setPosixFilePermissions(sock, PosixFilePermissions.fromString("rw-rw-rw-"));
            Files.setPosixFilePermissions(admin.getParent(), PosixFilePermissions.fromString("rwxr-xr-x"));
            Proc.Result asked = Proc.as(1001, "/usr/bin/python3", "-c", "import json,os,socket,struct,sys\n"
                    + "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
                    + "m=json.dumps({'op':'takeover','pid':os.getpid(),'version':'x'}).encode()\n"
                    + "try:\n"
                    + " s.sendall(struct.pack('<I',len(m))+m)\n"
                    + " msg,anc,flags,addr=s.recvmsg(65536, socket.CMSG_SPACE(4))\n"
                    + " print('got', len(msg), 'bytes', len(anc), 'descriptors')\n"
                    + "except (ConnectionResetError, BrokenPipeError) as e:\n"
                    + " print('closed on us, errno', e.errno)", sock.toString());
            // Closed at once: an EOF, or a reset when the request was still unread; never an answer.
            assertTrue(asked.out().contains("got 0 bytes 0 descriptors") || asked.out().contains("closed on us"),
                    asked.out() + asked.err());
            io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(5),
                    () -> Files.readString(ledger).contains("\"event\":\"handover.refused\""), () -> "recorded");
            assertTrue(Files.readString(ledger).contains("uid 1001 is not root"));
            assertTrue(fingerprintAs1001().startsWith("sha256:"), "still serving");
            assertEquals(0, d.stop());
        }
    }
}
