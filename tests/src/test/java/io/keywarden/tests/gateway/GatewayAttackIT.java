package io.keywarden.tests.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.CProgram;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The gateway tried as an attacker would: unprivileged users of the node (uid 1002 has no workload;
 * 1001 is workload {@code reviewer}; 1003 is workload {@code scripted}, whose only permitted
 * program is python3), a real {@code keywarden dev} with a 160 MB heap, loopback upstreams that
 * echo what they receive. Each attack is one test; each asserts what the upstream received, not
 * only what the attacker was answered.
 */
class GatewayAttackIT {
    static final String CHAT = "{\"model\":\"gpt-4.1-mini\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
            + "\"content\":\"hi\"}]}";
    static Path dir;
    static Path mnt;
    static Path socket;
    static Path ledger;
    static int gw;
    static int ops;
    static Daemon daemon;
    static io.keywarden.testkit.HttpStub echo;
    static final List<String> seen = new CopyOnWriteArrayList<>();
    static io.vertx.core.Vertx h2vertx;
    static int h2port;
    static final List<String> h2seen = new CopyOnWriteArrayList<>();
    static String python;

    @BeforeAll
    static void start() throws Exception {
        Requirements.rootAndFuse();
        dir = Files.createTempDirectory("kw-gwattack-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        mnt = dir.resolve("mnt");
        socket = dir.resolve("gw/gateway.sock");
        ledger = dir.resolve("audit.jsonl");
        python = Path.of("/usr/bin/python3").toRealPath().toString();
        echo = io.keywarden.testkit.HttpStub.start().on("/", GatewayAttackIT::echo);
        GatewayIT.tlsFor127(dir);
        h2vertx = io.vertx.core.Vertx.vertx();
        h2port = h2vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions().setSsl(true).setUseAlpn(true)
                        .setAlpnVersions(List.of(io.vertx.core.http.HttpVersion.HTTP_2))
                        .setKeyCertOptions(new io.vertx.core.net.PemKeyCertOptions().setCertPath(dir.resolve("srv.pem")
                                .toString()).setKeyPath(dir.resolve("srv.key").toString())))
                .requestHandler(req -> req.body().onSuccess(b -> {
                    h2seen.add(req.path());
                    req.response().putHeader("content-type", "application/json").end("{\"model\":\"gpt-4.1-mini\","
                            + "\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}");
                })).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai: {}
                  h2: {}
                workloads:
                  - name: reviewer
                    spiffeId: spiffe://example.org/reviewer
                    selectors: [unix:uid:1001]
                    keys: [openai, h2]
                  - name: scripted
                    spiffeId: spiffe://example.org/scripted
                    selectors: [unix:uid:1003]
                    keys: [openai]
                    readers: {exe: [%s]}
                """.formatted(python));
        gw = Ports.free();
        ops = Ports.free();
        Files.writeString(dir.resolve("config.yaml"), """
                policy: policy.yaml
                issuers: {dev: {type: dev}}
                gateway:
                  listen: 127.0.0.1:%d
                  socket: %s
                  caFile: ca.pem
                  maxConnectionsPerUid: 64
                  idleTimeout: 20s
                  upstreams:
                    openai: "http://127.0.0.1:%d/base"
                    h2: "https://127.0.0.1:%d"
                """.formatted(gw, socket, echo.port(), h2port));
        daemon = Daemon.start(Map.of("JAVA_TOOL_OPTIONS", "-Xmx160m"), "dev", "--mount", mnt.toString(), "--policy",
                dir.resolve("policy.yaml").toString(), "--audit", ledger.toString(), "--admin-socket",
                dir.resolve("admin/admin.sock").toString(), "--listen", "127.0.0.1:" + ops, "--config",
                dir.resolve("config.yaml").toString());
        daemon.awaitOut("gateway socket", 30);
    }

    @AfterAll
    static void stop() throws Exception {
        if (daemon != null) {
            int code = daemon.stop();
            String logs = String.join("\n", daemon.out) + String.join("\n", daemon.err);
            assertFalse(logs.contains("sk-dev-"), "no key in the daemon's output");
            assertFalse(logs.contains("OutOfMemoryError"), "no OutOfMemoryError under any flood");
            assertEquals(0, code, logs);
            String text = Files.readString(ledger);
            assertFalse(text.contains("sk-dev-"), "no key in the ledger");
        }
        if (echo != null) {
            echo.close();
        }
        if (h2vertx != null) {
            h2vertx.close().await(10, TimeUnit.SECONDS);
        }
        if (mnt != null && Mounts.at(mnt).isPresent()) {
            Mounts.detach(mnt);
        }
        if (dir != null) {
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    /**
     * The upstream: records each request's raw path and credential; answers chat completions with
     * usage; {@code /base/v1/echo401} quotes the credential it got in a 401 (body and a header);
     * {@code /base/v1/echostream} streams it back split across three writes.
     */
    static io.keywarden.testkit.HttpStub.Answer echo(io.keywarden.testkit.HttpStub.Request x) {
        String auth = String.valueOf(x.header("Authorization"));
        seen.add(x.path() + " " + auth);
        String key = auth.startsWith("Bearer ") ? auth.substring(7) : auth;
        String path = x.path();
        if (path.endsWith("/v1/echo401")) {
            return io.keywarden.testkit.HttpStub.Answer.json(401, "{\"error\":{\"message\":\"Incorrect API key provided: "
                    + key + "\",\"code\":\"invalid_api_key\"}}").with("WWW-Authenticate",
                    "Bearer error=\"invalid_token\", key=\"" + key + "\"");
        }
        if (path.endsWith("/v1/echobody")) {
            // The body's digest, and the body back twice over: a request and an answer larger than a socket's buffer.
            String body = x.body() == null ? "" : x.body();
            return io.keywarden.testkit.HttpStub.Answer.json(200, "{\"sha256\":\"" + sha256(body) + "\",\"echo\":\""
                    + body.replace("\"", "") + body.replace("\"", "") + "\"}");
        }
        if (path.endsWith("/v1/echostream")) {
            return io.keywarden.testkit.HttpStub.Answer.stream(200, Map.of("Content-Type", "text/event-stream"),
                    List.of("data: {\"echo\":\"" + key.substring(0, 5), key.substring(5, 21), key.substring(21) + "\"}\n\n",
                            "data: [DONE]\n\n"), 30);
        }
        return io.keywarden.testkit.HttpStub.Answer.json(200, "{\"model\":\"gpt-4.1-mini\",\"choices\":[{\"index\":0,"
                + "\"message\":{\"role\":\"assistant\",\"content\":\"ok\"}}],\"usage\":{\"prompt_tokens\":8,"
                + "\"completion_tokens\":2}}");
    }

    static String sha256(String s) {
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                    .digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static int status(Proc.Result r) {
        String o = r.out().trim();
        return Integer.parseInt(o.substring(o.lastIndexOf('\n') + 1).trim());
    }

    static Proc.Result curl(int uid, String... args) {
        List<String> cmd = new ArrayList<>(List.of("curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H",
                "Content-Type: application/json", "--data-binary", CHAT, "-m", "20"));
        cmd.addAll(List.of(args));
        return Proc.as(uid, cmd.toArray(String[]::new));
    }

    static String keyOf(int uid) {
        return Proc.as(uid, "cat", mnt.resolve("openai/api_key").toString()).out();
    }

    // ---- 1. pid reuse ----

    /** Python: sends one chat request ({@code body}) on {@code s}; its status line, or "none" when the gateway closed. */
    static final String REQUEST = """
            def request(s):
                s.settimeout(10)
                try:
                    s.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\\r\\nHost: gw\\r\\nContent-Type: application/json\\r\\n"
                              + b"Content-Length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
                    data = s.recv(65536)
                except OSError:
                    data = b""
                return data.split(b"\\r\\n")[0].decode(errors="replace") if data else "none"
            """;

    /**
     * The attacker (uid 1002, no workload): a child connects (and, with {@code first}, sends one
     * request, refused), hands the socket to its parent over SCM_RIGHTS and exits; the parent
     * prints the child's pid, and sends its request once told to. Between the two, the test gives
     * that very pid to a process of workload reviewer (uid 1001) through {@code ns_last_pid}: the
     * pid-reuse lottery, won on purpose instead of by 31,000 forks.
     */
    static final String HOLDER = """
            import os, socket, sys
            kind, addr, first = sys.argv[1], sys.argv[2], sys.argv[3] == "first"
            body = sys.argv[4].encode()
            """ + REQUEST + """
            a, b = socket.socketpair()
            pid = os.fork()
            if pid == 0:
                s = socket.socket(socket.AF_UNIX if kind == "unix" else socket.AF_INET, socket.SOCK_STREAM)
                s.connect(addr if kind == "unix" else ("127.0.0.1", int(addr)))
                if first:
                    print("first", request(s), flush=True)
                socket.send_fds(a, [b"x"], [s.fileno()])
                os._exit(0)
            msg, fds, _, _ = socket.recv_fds(b, 16, 1)
            os.waitpid(pid, 0)
            held = socket.socket(fileno=fds[0])
            print("pid", pid, flush=True)
            sys.stdin.readline()
            print("status", request(held), flush=True)
            """;

    String pidReuse(String kind, String addr, boolean first) throws Exception {
        // Another process of the machine may take the freed pid before the test can (a loaded runner
        // forks all the time): then the scenario starts again with a new attacker.
        for (int attempt = 1; attempt <= 5; attempt++) {
            String said = pidReuseOnce(kind, addr, first);
            if (said != null) {
                return said;
            }
            System.out.println("pid reuse: the freed pid went to another process of the machine; again (" + attempt + ")");
        }
        throw new AssertionError("five freed pids were all taken by other processes first");
    }

    /** What the attacker said, or null when the freed pid was taken by a process of the machine first. */
    private String pidReuseOnce(String kind, String addr, boolean first) throws Exception {
        int before = seen.size();
        ProcessBuilder pb = new ProcessBuilder("setpriv", "--reuid=1002", "--regid=1002", "--clear-groups", python, "-c",
                HOLDER, kind, addr, first ? "first" : "no", CHAT);
        pb.redirectErrorStream(true);
        Process attacker = pb.start();
        String victimPid = null;
        try (BufferedReader in = new BufferedReader(new InputStreamReader(attacker.getInputStream(),
                StandardCharsets.UTF_8)); Writer go = new java.io.OutputStreamWriter(attacker.getOutputStream(),
                StandardCharsets.UTF_8)) {
            String line;
            String pid = null;
            StringBuilder said = new StringBuilder();
            while ((line = in.readLine()) != null) {
                said.append(line).append('\n');
                if (line.startsWith("pid ")) {
                    pid = line.substring(4).trim();
                    break;
                }
            }
            assertTrue(pid != null, "the attacker did not get going: " + said);
            Proc.Result placed = io.keywarden.tests.support.PidReuse.giveTo(pid, 1001);
            if (!placed.ok() && Files.exists(Path.of("/proc/" + pid))) {
                return null;
            }
            assertTrue(placed.ok(), "could not give pid " + pid + " to uid 1001: " + placed.out() + placed.err());
            victimPid = pid;
            System.out.printf("pid reuse over %s%s: pid %s now belongs to uid 1001 (after %s forks)%n", kind,
                    first ? " (after a first request)" : "", pid, placed.out().trim().split(" ")[1]);
            assertTrue(Files.readString(Path.of("/proc/" + pid + "/status")).contains("Uid:\t1001"));
            go.write("go\n");
            go.flush();
            while ((line = in.readLine()) != null) {
                said.append(line).append('\n');
                if (line.startsWith("status ")) {
                    break;
                }
            }
            assertTrue(attacker.waitFor(20, TimeUnit.SECONDS));
            assertEquals(before, seen.size(), "the upstream received nothing from the attacker: " + said);
            return said.toString();
        } finally {
            attacker.destroyForcibly();
            if (victimPid != null) {
                Proc.run("kill", "-9", victimPid);
            }
        }
    }

    @Test
    void aReusedPidDoesNotLendItsWorkloadToAHeldUnixConnection() throws Exception {
        String said = pidReuse("unix", socket.toString(), false);
        assertTrue(said.contains("status HTTP/1.1 403") || said.contains("status none"), said);
        assertFalse(said.contains("status HTTP/1.1 200"), said);
        // Refused at its first request, the connection is closed (a refusal closes it; had it not been,
        // the parent's bytes would: it was pinned to the child).
        String afterFirst = pidReuse("unix", socket.toString(), true);
        assertTrue(afterFirst.contains("first HTTP/1.1 403"), afterFirst);
        assertTrue(afterFirst.contains("status none"), afterFirst);
    }

    @Test
    void aReusedPidDoesNotLendItsWorkloadToAHeldTcpConnection() throws Exception {
        String said = pidReuse("tcp", Integer.toString(gw), false);
        assertFalse(said.contains("status HTTP/1.1 200"), said);
        String afterFirst = pidReuse("tcp", Integer.toString(gw), true);
        assertTrue(afterFirst.contains("first HTTP/1.1 403"), afterFirst);
        assertFalse(afterFirst.contains("status HTTP/1.1 200"), afterFirst);
    }

    // ---- the Unix socket: each byte by its writer ----

    /** Sends one chat request on {@code s} and prints its status line (or "none" when the gateway closed). */
    static final String WRITER = """
            import os, socket, sys
            body = sys.argv[2].encode()
            """ + REQUEST + """
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sys.argv[1])
            """;

    /**
     * The permitted program (python3, workload scripted) is served; its forked child — the same
     * program, the same uid — writes on the same connection: the kernel names the child as the
     * writer, and the connection is closed before any of its bytes reach the gateway's server.
     */
    @Test
    void onTheUnixSocketABytesWriterIsTheCallerAndAnotherWriterClosesTheConnection() {
        String py = WRITER + """
                print("parent", request(s), flush=True)
                child = os.fork()
                if child == 0:
                    print("child", request(s), flush=True)
                    os._exit(0)
                os.waitpid(child, 0)
                print("parent again", request(s), flush=True)
                """;
        int before = seen.size();
        double refusedBefore = notPermitted();
        Proc.Result r = Proc.as(1003, python, "-c", py, socket.toString(), CHAT);
        assertTrue(r.out().contains("parent HTTP/1.1 200"), r.out() + r.err());
        assertTrue(r.out().contains("child none"), "the child's bytes closed the connection: " + r.out());
        assertTrue(r.out().contains("parent again none"), "the connection stays closed: " + r.out());
        assertEquals(before + 1, seen.size(), "only the parent's request reached the upstream: " + r.out());
        assertTrue(notPermitted() >= refusedBefore + 1, "the closed connection is counted as not_permitted");
    }

    /** {@code keywarden_gateway_requests_total} with outcome not_permitted, summed over its labels. */
    static double notPermitted() {
        double sum = 0;
        for (String line : io.keywarden.tests.support.Http.get("http://127.0.0.1:" + ops + "/metrics").split("\n")) {
            if (line.startsWith("keywarden_gateway_requests_total{") && line.contains("outcome=\"not_permitted\"")) {
                sum += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
            }
        }
        return sum;
    }

    /** File descriptors sent over the gateway socket (SCM_RIGHTS) are closed at once, and so is the connection. */
    @Test
    void descriptorsSentToTheGatewaySocketCloseTheConnection() throws Exception {
        String py = WRITER + """
                socket.send_fds(s, [b"POST /openai/v1/chat/completions HTTP/1.1\\r\\nHost: gw\\r\\n"],
                               [os.open(sys.argv[3], os.O_RDONLY) for _ in range(3)])
                print("passed", request(s), flush=True)
                """;
        int before = seen.size();
        Path marker = Files.writeString(dir.resolve("passed-marker"), "x");
        Files.setPosixFilePermissions(marker, PosixFilePermissions.fromString("rw-r--r--"));
        Proc.Result r = Proc.as(1003, python, "-c", py, socket.toString(), CHAT, marker.toString());
        assertTrue(r.out().contains("passed none"), r.out() + r.err());
        assertEquals(before, seen.size(), "nothing reached the upstream");
        io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10), () -> io.keywarden.linux.ProcFiles.descriptorsOn(daemon.pid(), marker) == 0,
                () -> "the daemon closed the descriptors it was sent");
    }

    /** A request body and an answer larger than a socket's buffers pass the relay whole, in both directions. */
    @Test
    void largeBodiesPassTheUnixSocketWhole() throws Exception {
        String big = "x".repeat(3 << 20);
        Path body = dir.resolve("big.json");
        Files.writeString(body, "{\"model\":\"gpt-4.1-mini\",\"pad\":\"" + big + "\"}");
        Files.setPosixFilePermissions(body, PosixFilePermissions.fromString("rw-r--r--"));
        Proc.Result r = Proc.as(1001, "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H",
                "Content-Type: application/json", "--data-binary", "@" + body, "-m", "60", "--unix-socket",
                socket.toString(), "http://gw/openai/v1/echobody");
        assertEquals(200, status(r), r.out().length() > 300 ? r.out().substring(0, 300) : r.out());
        String sent = Files.readString(body);
        assertTrue(r.out().contains("\"sha256\":\"" + sha256(sent) + "\""), "the upstream got the body whole");
        String echoed = sent.replace("\"", "");
        assertTrue(r.out().contains(echoed + echoed), "the answer (" + r.out().length() + " bytes) arrived whole");
    }

    /**
     * The relay runs on the gateway's event loops (a shard per loop, beside the HTTP server it feeds),
     * not on a thread of its own: a request crosses no thread between the two.
     */
    @Test
    void theRelayRunsOnTheEventLoops() throws Exception {
        List<String> threads = new ArrayList<>();
        try (var tasks = Files.newDirectoryStream(Path.of("/proc", Long.toString(daemon.pid()), "task"))) {
            for (Path t : tasks) {
                threads.add(Files.readString(t.resolve("comm")).trim());
            }
        }
        assertTrue(threads.stream().anyMatch(t -> t.startsWith("vert.x-eventloo")), threads.toString());
        // A thread's name as the kernel keeps it: 15 characters ("kw-gateway-rela").
        assertFalse(threads.stream().anyMatch(t -> t.startsWith("kw-gateway-rel")), "no relay thread: " + threads);
        String said = String.join("\n", daemon.out) + String.join("\n", daemon.err);
        assertFalse(said.contains("threads of their own"), said);
        // Every relayed connection so far (this class's many) was served on its shard's own loop.
        assertFalse(said.contains("cross threads"), said);
        assertTrue(said.contains("each request's writer named by the kernel"), said);
    }

    /**
     * The relay's internal sockets (one per event loop, each served with its shard of the relay)
     * sit in a directory only the daemon's user (root) can enter; even root connecting there
     * directly is closed unanswered: the servers serve only the relay's links.
     */
    @Test
    void theRelaysInternalSocketServesOnlyTheRelay() throws Exception {
        Path relayDir;
        try (var dirs = Files.newDirectoryStream(socket.getParent(), ".kw-gateway-relay-*")) {
            relayDir = dirs.iterator().next();
        }
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(relayDir)));
        List<Path> internals = new ArrayList<>();
        try (var socks = Files.newDirectoryStream(relayDir, "http-*.sock")) {
            socks.forEach(internals::add);
        }
        assertFalse(internals.isEmpty(), "the relay's internal sockets in " + relayDir);
        int before = seen.size();
        String py = WRITER.replace("s.connect(sys.argv[1])", "s.connect(sys.argv[1])\nprint('direct', request(s), flush=True)");
        for (Path internal : internals) {
            Proc.Result r = Proc.run(python, "-c", py, internal.toString(), CHAT);
            assertTrue(r.out().contains("direct none"), internal + ": " + r.out() + r.err());
        }
        assertEquals(before, seen.size(), "nothing reached the upstream");
    }

    // ---- 2. the permitted program is not a pass ----

    @Test
    void aProgramThatForksAndExecsThePermittedOneCannotSendThroughIt() throws Exception {
        Path attack = CProgram.binary("gwattack");
        String[] sleeper = {python, "-c", "import time; time.sleep(4)"};
        for (String[] via : new String[][] {{"unix", socket.toString()}, {"tcp", Integer.toString(gw)}}) {
            int before = seen.size();
            List<String> cmd = new ArrayList<>(List.of(attack.toString(), "fork-pass", via[0], via[1]));
            cmd.addAll(List.of(sleeper));
            Proc.Result r = Proc.as(1003, cmd.toArray(String[]::new));
            assertTrue(r.out().contains("STATUS "), r.out() + r.err());
            assertFalse(r.out().contains("STATUS HTTP/1.1 200"), via[0] + ": " + r.out());
            if (via[0].equals("unix")) {
                // The kernel names the child as the writer: it is attested, and refused as the program it is.
                assertTrue(r.out().contains("STATUS HTTP/1.1 403"), via[0] + ": " + r.out());
            } else {
                assertTrue(r.out().contains("held by 2 processes") || r.out().contains("STATUS none"), via[0] + ": " + r.out());
            }
            assertEquals(before, seen.size(), via[0] + ": nothing reached the upstream");
        }
    }

    @Test
    void aPermittedProgramThatExecsAnotherOnItsConnectionIsRefused() throws Exception {
        Path attack = CProgram.binary("gwattack");
        String py = """
                import os, socket, sys
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sys.argv[1])
                body = sys.argv[3].encode()
                s.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\\r\\nHost: gw\\r\\nContent-Type: application/json\\r\\n"
                          + b"Content-Length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
                s.settimeout(10)
                print("first", s.recv(65536).split(b"\\r\\n")[0].decode(), flush=True)
                os.set_inheritable(s.fileno(), True)
                os.execv(sys.argv[2], [sys.argv[2], "send-fd", str(s.fileno())])
                """;
        int before = seen.size();
        Proc.Result r = Proc.as(1003, python, "-c", py, socket.toString(), attack.toString(), CHAT);
        assertTrue(r.out().contains("first HTTP/1.1 200"), "python3 is workload scripted's program: " + r.out() + r.err());
        assertFalse(r.out().contains("STATUS HTTP/1.1 200"), r.out());
        assertEquals(before + 1, seen.size(), "only python3's request reached the upstream: " + r.out());
    }

    // ---- 3. floods ----

    /** Times {@code n} reads of reviewer's key file by uid 1001 (one process), in ms: the grant to another workload. */
    static double[] victimReads(int n) {
        String py = """
                import sys, time
                out = []
                for i in range(int(sys.argv[2])):
                    t = time.monotonic()
                    with open(sys.argv[1]) as f:
                        assert f.read().startswith("sk-dev-")
                    out.append((time.monotonic() - t) * 1000)
                    time.sleep(0.02)
                print(" ".join("%.2f" % x for x in out))
                """;
        Proc.Result r = Proc.as(1001, python, "-c", py, mnt.resolve("openai/api_key").toString(), Integer.toString(n));
        assertTrue(r.ok(), "the victim's reads failed: " + r.err());
        String[] parts = r.out().trim().split(" ");
        double[] ms = new double[parts.length];
        for (int i = 0; i < parts.length; i++) {
            ms[i] = Double.parseDouble(parts[i]);
        }
        java.util.Arrays.sort(ms);
        return ms;
    }

    static void assertPromptGrants(String flood, double[] ms) {
        double median = ms[ms.length / 2];
        double max = ms[ms.length - 1];
        System.out.printf("%s: another workload's reads during it: median %.2f ms, max %.2f ms over %d%n", flood, median,
                max, ms.length);
        assertTrue(median < 100, flood + ": median read " + median + " ms");
        assertTrue(max < 1000, flood + ": slowest read " + max + " ms");
    }

    @org.junit.jupiter.params.ParameterizedTest(name = "over {0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"tcp", "unix"})
    void aConnectionFloodIsCutAtTheUidsLimitAndOthersAreServed(String via) throws Exception {
        keyOf(1001);
        String py = """
                import resource, socket, sys, time
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
                socks = []
                for i in range(int(sys.argv[2])):
                    try:
                        if sys.argv[1].startswith("/"):
                            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                            u.settimeout(5)
                            u.connect(sys.argv[1])
                            socks.append(u)
                        else:
                            socks.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5))
                    except OSError as e:
                        print("refused-at", i, e, flush=True)
                        break
                print("opened", len(socks), flush=True)
                time.sleep(float(sys.argv[3]))
                alive = 0
                for s in socks:
                    s.setblocking(False)
                    try:
                        alive += 0 if s.recv(1) == b"" else 1
                    except BlockingIOError:
                        alive += 1
                    except OSError:
                        pass
                print("alive", alive, flush=True)
                """;
        ProcessBuilder pb = new ProcessBuilder("setpriv", "--reuid=1002", "--regid=1002", "--clear-groups", python, "-c",
                py, via.equals("unix") ? socket.toString() : Integer.toString(gw), "5000", "6");
        pb.redirectErrorStream(true);
        Process flood = pb.start();
        try {
            BufferedReader in = new BufferedReader(new InputStreamReader(flood.getInputStream(), StandardCharsets.UTF_8));
            // A Unix socket's backlog, full, refuses a connect at once (EAGAIN): the flood says so first.
            String opened = in.readLine();
            if (opened != null && opened.startsWith("refused-at")) {
                System.out.println("connection flood over " + via + ": " + opened);
                opened = in.readLine();
            }
            assertTrue(opened != null && opened.contains("opened"), String.valueOf(opened));
            double[] reads = victimReads(20);
            Proc.Result served = curl(1001, "--unix-socket", socket.toString(), "http://gw/openai/v1/chat/completions");
            assertEquals(200, status(served), "another uid is served during the flood: " + served.out());
            printHeap("during the connection flood");
            String alive = in.readLine();
            assertTrue(flood.waitFor(30, TimeUnit.SECONDS));
            int kept = Integer.parseInt(alive.replaceAll("\\D+", " ").trim().split(" ")[0]);
            System.out.printf("connection flood over %s: uid 1002 %s, %d of them still open after 6 s (limit 64 per uid)%n",
                    via, opened, kept);
            assertTrue(kept <= 64, "at most maxConnectionsPerUid stay open: " + alive);
            assertPromptGrants("connection flood (5,000 " + via + " connections by one uid)", reads);
        } finally {
            flood.destroyForcibly();
        }
        printHeap("after the connection flood");
    }

    @org.junit.jupiter.params.ParameterizedTest(name = "over {0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"tcp", "unix"})
    void aBodyFloodIsBoundedAndOthersAreServed(String via) throws Exception {
        keyOf(1001);
        // 24 connections of workload scripted's program (python3: it passes attestation), each
        // sending a 16 MB chunked body as fast as it can.
        String py = """
                import socket, sys, threading
                results = []
                def one():
                    if sys.argv[1].startswith("/"):
                        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        s.settimeout(20)
                        s.connect(sys.argv[1])
                    else:
                        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
                    s.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\\r\\nHost: gw\\r\\nContent-Type: application/json\\r\\n"
                              + b"Transfer-Encoding: chunked\\r\\n\\r\\n")
                    chunk = b"%x\\r\\n" % 65536 + b"a" * 65536 + b"\\r\\n"
                    sent = 0
                    try:
                        while sent < 16 << 20:
                            s.sendall(chunk)
                            sent += 65536
                        s.sendall(b"0\\r\\n\\r\\n")
                        answer = s.recv(4096).split(b"\\r\\n")[0].decode()
                    except OSError as e:
                        answer = "cut"
                    results.append("%s after %d MB" % (answer, sent >> 20))
                ts = [threading.Thread(target=one) for _ in range(24)]
                [t.start() for t in ts]
                [t.join() for t in ts]
                print("|".join(results), flush=True)
                """;
        ProcessBuilder pb = new ProcessBuilder("setpriv", "--reuid=1003", "--regid=1003", "--clear-groups", python, "-c",
                py, via.equals("unix") ? socket.toString() : Integer.toString(gw));
        pb.redirectErrorStream(true);
        Process flood = pb.start();
        try {
            double[] reads = victimReads(20);
            Proc.Result served = curl(1001, "--unix-socket", socket.toString(), "http://gw/openai/v1/chat/completions");
            assertEquals(200, status(served), "another uid is served during the flood: " + served.out());
            printHeap("during the body flood");
            assertTrue(flood.waitFor(60, TimeUnit.SECONDS), "the flood ended");
            String out = new String(flood.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            System.out.println("body flood over " + via + " answers: " + out);
            assertFalse(out.contains("200 OK"), "no 16 MB body was taken: " + out);
            assertPromptGrants("body flood over " + via + " (24 x 16 MB chunked bodies by workload scripted)", reads);
        } finally {
            flood.destroyForcibly();
        }
        printHeap("after the body flood");
    }

    /** The daemon's heap after a full GC (jcmd), printed: what a flood left behind, against its 160 MB. */
    static void printHeap(String when) throws Exception {
        String jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd").toString();
        if (!Files.isExecutable(Path.of(jcmd))) {
            System.out.println("daemon heap " + when + ": not measured (no jcmd in this JDK)");
            return;
        }
        Proc.run(jcmd, Long.toString(daemon.pid()), "GC.run");
        Proc.Result info = Proc.run(jcmd, Long.toString(daemon.pid()), "GC.heap_info");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("total (\\d+)K, used (\\d+)K").matcher(info.out());
        if (m.find()) {
            System.out.printf("daemon heap %s: %d MB used of %d MB committed (-Xmx160m)%n", when,
                    Long.parseLong(m.group(2)) / 1024, Long.parseLong(m.group(1)) / 1024);
        } else {
            System.out.println("daemon heap " + when + ": " + info.out().lines().findFirst().orElse(info.err()));
        }
    }

    // ---- 4. one malformed request does not poison an upstream ----

    /**
     * Requests whose target the upstream's URI could not hold (a space, a '|', braces, a quote; and
     * an HTTP/2 prior-knowledge preface, which the gateway, HTTP/1.1 toward agents, does not take)
     * are refused before the upstream's connection pool; the HTTP/2 upstream behind them goes on
     * answering at once.
     */
    @Test
    void malformedRequestTargetsAreRefusedAndTheUpstreamKeepsServing() {
        int before = h2seen.size();
        String base = "http://127.0.0.1:" + gw;
        for (String target : new String[] {"/h2/v1/chat completions", "/h2/v1/chat|completions", "/h2/v1/{chat}",
            "/h2/v1/\"chat\"", "/h2/v1/chat/completions?q=a b"}) {
            Proc.Result bad = Proc.as(1001, "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-m", "20", "--data-binary",
                    CHAT, "-H", "Content-Type: application/json", "--request-target", target, base + "/");
            int code = status(bad);
            assertTrue(code == 400 || code == 0, target + ": " + bad.out() + bad.err());
        }
        Proc.Result h2c = Proc.as(1001, "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--http2-prior-knowledge",
                "-m", "20", "--data-binary", CHAT, "-H", "Content-Type: application/json", base + "/h2/v1/chat/completions");
        assertTrue(status(h2c) != 200, "h2c prior knowledge is not taken: " + h2c.out());
        for (int i = 0; i < 3; i++) {
            long t = System.nanoTime();
            Proc.Result ok = curl(1001, base + "/h2/v1/chat/completions");
            assertEquals(200, status(ok), ok.out() + ok.err());
            System.out.printf("after the malformed requests: a normal one to the HTTP/2 upstream answered in %.0f ms%n",
                    (System.nanoTime() - t) / 1e6);
        }
        assertEquals(before + 3, h2seen.size(), "only the well-formed requests reached the upstream");
    }

    // ---- 5. paths and answers ----

    @Test
    void everyEncodedDotPathIsRefusedBeforeTheUpstream() {
        int before = seen.size();
        String[] paths = {"/openai/v1/..%2f..%2fadmin", "/openai/v1/%2e%2e/admin", "/openai/v1/%252e%252e/admin",
            "/openai/v1/..;/admin", "/openai/v1/%c0%ae%c0%ae/admin", "/openai/v1/.%2e/admin", "/openai/v1/%2E./admin",
            "/openai/v1/..%5cadmin", "/openai/v1/chat;x=1/completions", "/openai//v1/chat/completions",
            "/openai/v1/%00/completions", "/openai/v1/../../admin", "/openai/./v1/chat/completions"};
        for (String p : paths) {
            Proc.Result r = curl(1001, "--path-as-is", "http://127.0.0.1:" + gw + p);
            assertEquals(400, status(r), p + ": " + r.out());
        }
        assertEquals(before, seen.size(), "none reached the upstream: " + seen.subList(before, seen.size()));
        Proc.Result ok = curl(1001, "http://127.0.0.1:" + gw + "/openai/v1/chat/completions?api-version=2024-10-21");
        assertEquals(200, status(ok), ok.out());
        assertTrue(seen.get(seen.size() - 1).startsWith("/base/v1/chat/completions "), seen.get(seen.size() - 1));
        Proc.Result encoded = curl(1001, "http://127.0.0.1:" + gw + "/openai/v1/files/file%2Dabc");
        assertEquals(200, status(encoded), encoded.out());
        assertTrue(seen.get(seen.size() - 1).startsWith("/base/v1/files/file-abc "), "decoded once, forwarded"
                + " normalised: " + seen.get(seen.size() - 1));
    }

    @Test
    void anUpstreamThatEchoesTheKeyHasItRedacted() {
        String key = keyOf(1001);
        assertTrue(key.startsWith("sk-dev-"), key);
        Proc.Result r = curl(1001, "-D", "-", "http://127.0.0.1:" + gw + "/openai/v1/echo401");
        assertEquals(401, status(r), r.out());
        assertFalse(r.out().contains(key), "the 401 reaches the agent without the key: " + r.out());
        assertTrue(r.out().contains("Incorrect API key provided: [redacted by keywarden]"), r.out());
        assertTrue(r.out().toLowerCase().contains("www-authenticate: bearer error=\"invalid_token\", key=\"[redacted"),
                r.out());
        Proc.Result s = curl(1001, "-N", "http://127.0.0.1:" + gw + "/openai/v1/echostream");
        assertEquals(200, status(s), s.out());
        assertFalse(s.out().contains(key), "a key split across stream chunks is redacted too: " + s.out());
        assertFalse(s.out().contains(key.substring(5, 21)), s.out());
        assertTrue(s.out().contains("[redacted by keywarden]"), s.out());
        assertTrue(s.out().contains("data: [DONE]"), s.out());
    }
}
