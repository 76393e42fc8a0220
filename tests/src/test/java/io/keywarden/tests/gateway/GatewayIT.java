package io.keywarden.tests.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Gateway mode end to end: a real `keywarden dev` with KeyFS and the gateway on loopback TCP and a
 * Unix socket, in front of a local upstream as strict as OpenAI about its credential; callers are
 * real processes of several uids (curl, python3) started with setpriv. The Unix socket here is not
 * relayed ({@code gateway.socketRelay: false}): its callers are proved as on kernels before 6.5, by
 * who holds the socket ({@code GatewayAttackIT} tries the relayed one).
 */
class GatewayIT {
    static final String CHAT = "{\"model\":\"gpt-4.1-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    static Path dir;
    static Path mnt;
    static Path ledger;
    static Path admin;
    static Path socket;
    static int gw;
    static int ops;
    static UpstreamStub upstream;
    static UpstreamStub secure;
    /** An HTTP/2-only TLS upstream (Vert.x, ALPN h2): what protocol each request arrived with. */
    static io.vertx.core.Vertx h2vertx;
    static int h2port;
    static final java.util.List<String> h2seen = new java.util.concurrent.CopyOnWriteArrayList<>();
    static Daemon daemon;
    static java.net.DatagramSocket statsd;
    static io.keywarden.testkit.HttpStub otlp;
    static final java.util.List<byte[]> otlpPosts = new java.util.concurrent.CopyOnWriteArrayList<>();

    @BeforeAll
    static void start() throws Exception {
        Requirements.rootAndFuse();
        dir = Files.createTempDirectory("kw-gw-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        mnt = dir.resolve("mnt");
        ledger = dir.resolve("audit.jsonl");
        admin = dir.resolve("admin/admin.sock");
        socket = dir.resolve("gw/gateway.sock");
        String python = Path.of("/usr/bin/python3").toRealPath().toString();
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai: {}
                  secure: {}
                  claude: {}
                  h2: {}
                workloads:
                  - name: reviewer
                    spiffeId: spiffe://example.org/reviewer
                    selectors: [unix:uid:1001]
                    keys: [openai, secure, claude, h2]
                    guard:
                      models: ["gpt-4.1-mini", "gpt-4o-*", "claude-sonnet-*"]
                  - name: scripted
                    spiffeId: spiffe://example.org/scripted
                    selectors: [unix:uid:1003]
                    keys: [openai]
                    readers: {exe: [%s]}
                  - name: spender
                    spiffeId: spiffe://example.org/spender
                    selectors: [unix:uid:1004]
                    keys: [openai]
                    guard:
                      budget: {tokensPerHour: 300}
                      onBreach: block
                """.formatted(python));
        upstream = new UpstreamStub();
        secure = new UpstreamStub(tlsFor127(dir));
        h2vertx = io.vertx.core.Vertx.vertx();
        io.vertx.core.http.HttpServer h2 = h2vertx.createHttpServer(new io.vertx.core.http.HttpServerOptions()
                .setSsl(true).setUseAlpn(true).setAlpnVersions(java.util.List.of(io.vertx.core.http.HttpVersion.HTTP_2))
                .setKeyCertOptions(new io.vertx.core.net.PemKeyCertOptions().setCertPath(dir.resolve("srv.pem").toString())
                        .setKeyPath(dir.resolve("srv.key").toString())))
                .requestHandler(req -> req.body().onSuccess(b -> {
                    h2seen.add(req.version() + " " + req.getHeader("authorization"));
                    req.response().putHeader("content-type", "application/json").end("{\"model\":\"gpt-4.1-mini\","
                            + "\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}");
                }));
        h2port = h2.listen(0, "127.0.0.1").await(10, java.util.concurrent.TimeUnit.SECONDS).actualPort();
        gw = Ports.free();
        statsd = new java.net.DatagramSocket(0, java.net.InetAddress.getLoopbackAddress());
        // An OTLP/HTTP receiver: protobuf POSTs only, as the collector takes them.
        otlp = io.keywarden.testkit.HttpStub.start().on("/v1/metrics", r -> {
            if (!"POST".equals(r.method()) || !"application/x-protobuf".equals(r.header("Content-Type"))) {
                return io.keywarden.testkit.HttpStub.Answer.empty(415);
            }
            otlpPosts.add(r.bytes());
            return io.keywarden.testkit.HttpStub.Answer.empty(200);
        });
        Files.writeString(dir.resolve("config.yaml"), """
                policy: policy.yaml
                issuers: {dev: {type: dev}}
                gateway:
                  listen: 127.0.0.1:%d
                  socket: %s
                  socketRelay: false
                  caFile: ca.pem
                  upstreams:
                    secure: "https://127.0.0.1:%d"
                    claude: {url: "http://127.0.0.1:%d", auth: x-api-key, maxBodyBytes: 64KiB}
                    h2: "https://127.0.0.1:%d"
                metrics:
                  statsd: {host: 127.0.0.1, port: %d, flavor: datadog}
                  otlp: {url: "http://127.0.0.1:%d/v1/metrics"}
                  step: 1s
                """.formatted(gw, socket, secure.port(), upstream.port(), h2port, statsd.getLocalPort(),
                otlp.uri("").getPort()));
        ops = Ports.free();
        daemon = Daemon.start(Map.of(), "dev", "--mount", mnt.toString(), "--policy", dir.resolve("policy.yaml").toString(),
                "--audit", ledger.toString(), "--admin-socket", admin.toString(), "--listen", "127.0.0.1:" + ops,
                "--config", dir.resolve("config.yaml").toString(),
                // The listeners and the TLS upstream from the config, the plain upstream from the flag: merged.
                "--upstream", "openai=http://127.0.0.1:" + upstream.port());
        daemon.awaitOut("gateway socket", 30);
    }

    @AfterAll
    static void stop() throws Exception {
        if (daemon != null) {
            assertEquals(0, daemon.stop());
            // The usage of the last minute is written at shutdown: per workload, counts only.
            String text = Files.readString(ledger);
            assertTrue(text.contains("\"event\":\"usage\"") && text.contains("\"workload\":\"reviewer\"")
                    && text.contains("\"tokens_in\":"), text);
            assertFalse(text.contains("hello") || text.contains("messages") || text.contains("sk-dev-"),
                    "no prompt, completion or key in the ledger");
            String logs = String.join("\n", daemon.out) + String.join("\n", daemon.err);
            assertFalse(logs.contains("sk-dev-") || logs.contains("placeholder-key") || logs.contains("caller-secret"),
                    "no credential, the workload's or the caller's, in the daemon's output");
            Proc.Result verify = Daemon.cli("audit", "verify", ledger.toString());
            assertEquals(0, verify.code(), verify.out() + verify.err());
        }
        if (upstream != null) {
            upstream.close();
        }
        if (secure != null) {
            secure.close();
        }
        if (h2vertx != null) {
            h2vertx.close().await(10, java.util.concurrent.TimeUnit.SECONDS);
        }
        if (statsd != null) {
            statsd.close();
        }
        if (otlp != null) {
            otlp.close();
        }
        if (mnt != null && Mounts.at(mnt).isPresent()) {
            Mounts.detach(mnt);
        }
        if (dir != null) {
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    /** curl as {@code uid} to the TCP gateway: status line and body (-w appends the status). */
    static Proc.Result curl(int uid, String path, String body, String... extra) {
        java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of("curl", "-sS", "-N", "-o", "-", "-w",
                "\n%{http_code}", "-H", "Content-Type: application/json", "-H", "Authorization: Bearer placeholder-key",
                "-H", "x-api-key: caller-secret", "--data-binary", body));
        cmd.addAll(java.util.List.of(extra));
        cmd.add("http://127.0.0.1:" + gw + path);
        return Proc.as(uid, cmd.toArray(String[]::new));
    }

    static int status(Proc.Result r) {
        String o = r.out();
        return Integer.parseInt(o.substring(o.lastIndexOf('\n') + 1).trim());
    }

    @Test
    void theWorkloadsKeyIsInjectedAndTheCallersNeverForwarded() throws Exception {
        int before = upstream.seen.size();
        Proc.Result r = curl(1001, "/openai/v1/chat/completions", CHAT);
        assertEquals(200, status(r), r.out() + r.err());
        assertTrue(r.out().contains("\"content\":\"hello\""), r.out());
        UpstreamStub.Seen s = upstream.seen.get(upstream.seen.size() - 1);
        assertEquals(before + 1, upstream.seen.size());
        String key = Proc.as(1001, "cat", mnt.resolve("openai/api_key").toString()).out();
        assertTrue(key.startsWith("sk-dev-"), key);
        assertEquals("Bearer " + key, s.authorization(), "the upstream got the workload's current key");
        assertEquals(null, s.xApiKey(), "the caller's x-api-key is stripped");
        for (UpstreamStub.Seen each : upstream.seen) {
            assertFalse(String.valueOf(each.authorization()).contains("placeholder"), "the placeholder never leaves");
            assertFalse(String.valueOf(each.xApiKey()).contains("caller-secret"));
        }
    }

    @Test
    void theUnixSocketWithoutTheRelayFindsItsCallerByWhoHoldsTheSocket() {
        Proc.Result ok = Proc.as(1001, "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--unix-socket", socket.toString(),
                "-H", "Content-Type: application/json", "--data-binary", CHAT, "http://gw/openai/v1/chat/completions");
        assertEquals(200, status(ok), ok.out() + ok.err());
        Proc.Result other = Proc.as(1002, "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--unix-socket",
                socket.toString(), "-H", "Content-Type: application/json", "--data-binary", CHAT,
                "http://gw/openai/v1/chat/completions");
        assertEquals(403, status(other), other.out());
        assertTrue(other.out().contains("\"code\":\"not_permitted\""), other.out());
    }

    @Test
    void theBannerSaysWhoMayReadEachKeyAndTheReadersLimits() throws Exception {
        String out = String.join("\n", daemon.out);
        assertTrue(out.contains(mnt.resolve("openai/api_key") + "  <- readable by uid 1003 (spiffe://example.org/scripted),"
                + " only by exe " + Path.of("/usr/bin/python3").toRealPath()), out);
        assertTrue(out.contains(mnt.resolve("openai/api_key") + "  <- readable by uid 1001 (spiffe://example.org/reviewer)\n"),
                "no limits, none said: " + out);
    }

    @Test
    void aBodyThatIsNotJsonIsABadRequestAndAMissingPrefixNamesTheKeys() {
        int before = upstream.seen.size();
        Proc.Result bad = curl(1001, "/openai/v1/chat/completions", "{\"model\": \"gpt-4.1-mini\",");
        assertEquals(400, status(bad), bad.out());
        assertTrue(bad.out().contains("\"code\":\"bad_request\"") && bad.out().contains("not valid JSON"), bad.out());
        Proc.Result noPrefix = curl(1001, "/v1/chat/completions", CHAT);
        assertEquals(404, status(noPrefix), noPrefix.out());
        assertTrue(noPrefix.out().contains("no key named 'v1' in the policy; keys: openai, secure, claude, h2"), noPrefix.out());
        assertEquals(before, upstream.seen.size(), "nothing was sent upstream");
    }

    @Test
    void aModelOutsideTheAllowlistIsRefusedBeforeTheUpstreamSeesIt() {
        int before = upstream.seen.size();
        Proc.Result r = curl(1001, "/openai/v1/chat/completions", CHAT.replace("gpt-4.1-mini", "gpt-5"));
        assertEquals(403, status(r), r.out());
        assertTrue(r.out().contains("{\"error\":{\"type\":\"keywarden\",\"code\":\"model_not_allowed\""), r.out());
        assertEquals(before, upstream.seen.size(), "nothing was sent upstream");
        assertEquals(200, status(curl(1001, "/openai/v1/chat/completions", CHAT.replace("gpt-4.1-mini", "gpt-4o-mini"))),
                "a glob allows it");
    }

    @Test
    void anotherUidAndAnotherProgramOfTheRightUidAreRefused() {
        Proc.Result stranger = curl(1002, "/openai/v1/chat/completions", CHAT);
        assertEquals(403, status(stranger), stranger.out());
        assertTrue(stranger.out().contains("not_permitted"), stranger.out());
        // The refused caller learns what the gateway saw of it and the rule that failed.
        assertTrue(stranger.out().contains("(rule: unidentified; caller pid ") && stranger.out().contains(" uid 1002 exe "),
                stranger.out());
        Proc.Result curlAsScripted = curl(1003, "/openai/v1/chat/completions", CHAT);
        assertEquals(403, status(curlAsScripted), "curl is not the permitted executable of workload scripted");
        assertTrue(curlAsScripted.out().contains("rule: readers; caller pid ") && curlAsScripted.out().contains(
                " uid 1003 exe /usr/bin/curl"), curlAsScripted.out());
        String py = """
                import json, urllib.request, sys
                req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST",
                    headers={"Content-Type": "application/json", "Authorization": "Bearer whatever"})
                print(urllib.request.urlopen(req).status)
                """;
        Proc.Result python = Proc.as(1003, "/usr/bin/python3", "-c", py, "http://127.0.0.1:" + gw
                + "/openai/v1/chat/completions", CHAT);
        assertEquals("200", python.out().trim(), python.err());
    }

    @Test
    void streamsArriveIntactChunkByChunkWithUsageCounted() throws Exception {
        String body = CHAT.replace("}]}", "}],\"stream\":true}");
        Proc.Result r = curl(1001, "/openai/v1/chat/completions", body, "-w",
                "\n%{time_starttransfer} %{time_total}\n%{http_code}");
        assertEquals(200, status(r), r.out());
        String[] lines = r.out().split("\n");
        String[] times = lines[lines.length - 2].trim().split(" ");
        double first = Double.parseDouble(times[0]);
        double total = Double.parseDouble(times[1]);
        String out = r.out();
        for (String w : new String[] {"one", "two", "three", "four", "five"}) {
            assertTrue(out.contains("\"content\":\"" + w + " \""), out);
        }
        assertTrue(out.contains("data: [DONE]"), out);
        assertFalse(out.contains("\"usage\""), "the usage chunk the gateway asked for is not passed to an agent that"
                + " asked for none: " + out);
        UpstreamStub.Seen s = upstream.seen.get(upstream.seen.size() - 1);
        assertTrue(s.body().contains("\"stream_options\":{\"include_usage\":true}"), s.body());
        Proc.Result asked = curl(1001, "/openai/v1/chat/completions",
                CHAT.replace("}]}", "}],\"stream\":true,\"stream_options\":{\"include_usage\":true}}"));
        assertTrue(asked.out().contains("\"usage\":{\"prompt_tokens\":30"), "an agent that asked gets it: " + asked.out());
        String metrics = io.keywarden.tests.support.Http.get("http://127.0.0.1:" + ops + "/metrics");
        assertTrue(metrics.contains("keywarden_tokens_total{direction=\"out\",key=\"openai\",model=\"gpt-4.1-mini\","
                + "workload=\"reviewer\"}"), metrics);
        System.out.printf("streamed 5 chunks %d ms apart: first byte at %.0f ms, last at %.0f ms%n",
                UpstreamStub.CHUNK_DELAY_MS, first * 1000, total * 1000);
        assertTrue(total - first > 3 * UpstreamStub.CHUNK_DELAY_MS / 1000.0, "not buffered: the first chunk arrived "
                + (total - first) * 1000 + " ms before the end");
    }

    @Test
    void aBudgetBreachBlocksTheWorkloadUntilAnOperatorUnblocks() throws Exception {
        io.keywarden.testkit.Await.clearOfWindowEdge(java.time.Duration.ofHours(1), java.time.Duration.ofSeconds(30));
        String api = mnt.resolve("openai/api_key").toString();
        assertTrue(Proc.as(1004, "cat", api).out().startsWith("sk-dev-"));
        // Each request reserves its worst case (body bytes + max_tokens) and settles to the 50 tokens used:
        // admitted while used + worst case fits the 300 tokens, then refused, which is the breach.
        String body = CHAT.replace("}]}", "}],\"max_tokens\":20}");
        long worst = body.getBytes(java.nio.charset.StandardCharsets.UTF_8).length + 20;
        long admitted = 1 + (300 - worst) / 50;
        for (int i = 0; i < admitted; i++) {
            assertEquals(200, status(curl(1004, "/openai/v1/chat/completions", body)), "request " + (i + 1) + ": "
                    + (i * 50) + " used + " + worst + " worst case fits 300");
        }
        Proc.Result r = curl(1004, "/openai/v1/chat/completions", body, "-D", "-");
        assertEquals(429, status(r), r.out());
        assertTrue(r.out().contains("\"code\":\"budget_exceeded\""), r.out());
        assertTrue(r.out().toLowerCase().contains("retry-after: "), r.out());
        io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(5),
                () -> Proc.as(1004, "cat", api).err().contains("Permission denied"), () -> "onBreach block: the file too");
        String ledgerText = Files.readString(ledger);
        assertTrue(ledgerText.contains("\"event\":\"guard.breach\"") && ledgerText.contains("\"kind\":\"tokens_per_hour\"")
                && ledgerText.contains("\"action\":\"block\""), ledgerText);
        Proc.Result unblock = Daemon.cli("unblock", "--admin-socket", admin.toString(), "--spiffe-id",
                "spiffe://example.org/spender");
        assertEquals(0, unblock.code(), unblock.err());
        assertTrue(Proc.as(1004, "cat", api).out().startsWith("sk-dev-"), "unblocked: the file serves again");
        assertEquals(429, status(curl(1004, "/openai/v1/chat/completions", body)),
                "the gateway still holds the hourly budget until the hour ends");
    }

    @Test
    void everyMeterIsExportedToDogStatsdAndOtlp() throws Exception {
        assertEquals(200, status(curl(1001, "/openai/v1/chat/completions", CHAT)));
        statsd.setSoTimeout(5000);
        StringBuilder got = new StringBuilder();
        long end = System.currentTimeMillis() + 10_000;
        java.util.regex.Pattern line = java.util.regex.Pattern.compile(
                "keywarden\\.gateway\\.requests:[1-9]\\d*\\|c\\|#key:openai,outcome:ok,workload:reviewer");
        while (!line.matcher(got).find() && System.currentTimeMillis() < end) {
            java.net.DatagramPacket p = new java.net.DatagramPacket(new byte[4096], 4096);
            statsd.receive(p);
            got.append(new String(p.getData(), 0, p.getLength(), java.nio.charset.StandardCharsets.UTF_8)).append('\n');
        }
        assertTrue(line.matcher(got).find(), "a DogStatsD counter with the step's requests and its tags: " + got);
        io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10), () -> !otlpPosts.isEmpty(),
                () -> "no OTLP export");
        String proto = new String(otlpPosts.get(otlpPosts.size() - 1), java.nio.charset.StandardCharsets.ISO_8859_1);
        assertTrue(proto.contains("keywarden.tokens") && proto.contains("service.name") && proto.contains("keywarden"),
                "an OTLP ExportMetricsServiceRequest with keywarden's meters");
    }

    @Test
    void theExampleAgentsRunInGatewayModeWithNoKeyAtAll() throws Exception {
        Path deploy = Path.of(System.getProperty("keywarden.repo", ".."), "deploy").toAbsolutePath();
        String base = "http://127.0.0.1:" + gw + "/openai/v1";
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String[][] agents = {
            {"python3", deploy.resolve("kubernetes/example-agent/agent.py").toString()},
            {javaBin, deploy.resolve("examples/agents/java/KeyReader.java").toString()},
            {"node", deploy.resolve("examples/agents/node/agent.mjs").toString()},
        };
        for (String[] a : agents) {
            java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of("env", "KEYWARDEN_MODE=gateway",
                    "OPENAI_BASE_URL=" + base, "AGENT_ITERATIONS=1", "HOME=/tmp"));
            cmd.addAll(java.util.List.of(a));
            int before = upstream.seen.size();
            Proc.Result r = Proc.as(1001, cmd.toArray(String[]::new));
            assertEquals(0, r.code(), a[1] + ": " + r.out() + r.err());
            assertTrue(r.out().contains("gateway: "), r.out());
            assertFalse(r.out().contains("refused"), r.out());
            assertEquals(before + 1, upstream.seen.size(), a[1] + " reached the upstream through the gateway");
            assertTrue(upstream.seen.get(upstream.seen.size() - 1).authorization().startsWith("Bearer sk-dev-"));
        }
        Proc.Result refused = Proc.as(1001, "env", "KEYWARDEN_MODE=gateway", "OPENAI_BASE_URL=" + base,
                "OPENAI_MODEL=gpt-5", "node", deploy.resolve("examples/agents/node/agent.mjs").toString());
        assertTrue(refused.out().contains("gateway refused (HTTP 403): model_not_allowed"), refused.out());
    }

    /** A CA (its certificate at {@code dir/ca.pem}) and a server certificate for 127.0.0.1 it signed. */
    static javax.net.ssl.SSLContext tlsFor127(Path dir) throws Exception {
        String d = dir.toString();
        for (String[] cmd : new String[][] {
            {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                d + "/ca.key", "-out", d + "/ca.pem", "-days", "1", "-subj", "/CN=keywarden test CA"},
            {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                d + "/srv.key", "-out", d + "/srv.csr", "-subj", "/CN=upstream"},
            {"sh", "-c", "printf 'subjectAltName=IP:127.0.0.1\\n' > " + d + "/san.ext && openssl x509 -req -in " + d
                + "/srv.csr -CA " + d + "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -days 1 -extfile " + d
                + "/san.ext -out " + d + "/srv.pem"},
            {"openssl", "pkcs12", "-export", "-inkey", d + "/srv.key", "-in", d + "/srv.pem", "-out", d + "/srv.p12",
                "-passout", "pass:test"},
        }) {
            Proc.Result r = Proc.run(cmd);
            assertTrue(r.ok(), String.join(" ", cmd) + ": " + r.err());
        }
        java.security.KeyStore ks = java.security.KeyStore.getInstance("PKCS12");
        try (var in = Files.newInputStream(dir.resolve("srv.p12"))) {
            ks.load(in, "test".toCharArray());
        }
        javax.net.ssl.KeyManagerFactory kmf = javax.net.ssl.KeyManagerFactory.getInstance("SunX509");
        kmf.init(ks, "test".toCharArray());
        javax.net.ssl.SSLContext ctx = javax.net.ssl.SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        return ctx;
    }

    @Test
    void aTlsUpstreamIsVerifiedWithTheConfiguredCa() {
        int before = secure.seen.size();
        Proc.Result r = curl(1001, "/secure/v1/chat/completions", CHAT);
        assertEquals(200, status(r), r.out());
        assertEquals(before + 1, secure.seen.size(), "the request went over TLS to the upstream the CA vouches for");
        assertTrue(secure.seen.get(secure.seen.size() - 1).authorization().startsWith("Bearer sk-dev-"));
    }

    @Test
    void anAnthropicStyleUpstreamGetsTheKeyAsXApiKeyAndUsageIsCounted() throws Exception {
        String body = "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
        Proc.Result r = curl(1001, "/claude/v1/messages", body, "-H", "anthropic-version: 2023-06-01");
        assertEquals(200, status(r), r.out());
        UpstreamStub.Seen s = upstream.seen.get(upstream.seen.size() - 1);
        String key = Proc.as(1001, "cat", mnt.resolve("claude/api_key").toString()).out();
        assertEquals(key, s.xApiKey(), "the workload's key in x-api-key, the caller's replaced");
        assertEquals(null, s.authorization(), "the caller's Authorization is not forwarded");
        String metrics = io.keywarden.tests.support.Http.get("http://127.0.0.1:" + ops + "/metrics");
        assertTrue(metrics.contains("keywarden_tokens_total{direction=\"in\",key=\"claude\",model=\"claude-sonnet-4-5\","
                + "workload=\"reviewer\"} 30.0"), metrics);
    }

    @Test
    void aKeysOwnBodyLimitIsHeldAndTheDefaultElsewhere() throws Exception {
        String big = "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\""
                + "x".repeat(100_000) + "\"}]}";
        Path f = dir.resolve("big.json");
        Files.writeString(f, big);
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
        int before = upstream.seen.size();
        Proc.Result claude = curl(1001, "/claude/v1/messages", "@" + f, "-H", "anthropic-version: 2023-06-01");
        assertEquals(413, status(claude), "100 KB over the claude key's 64 KiB: " + claude.out());
        assertTrue(claude.out().contains("larger than 65536 bytes"), claude.out());
        assertEquals(before, upstream.seen.size(), "nothing forwarded");
        Proc.Result openai = curl(1001, "/openai/v1/chat/completions", "@" + f);
        assertEquals(200, status(openai), "the openai key has the default 4 MiB: " + openai.out());
    }

    @Test
    void anHttp2UpstreamIsSpokenToInHttp2() {
        Proc.Result r = curl(1001, "/h2/v1/chat/completions", CHAT);
        assertEquals(200, status(r), r.out());
        assertTrue(h2seen.get(h2seen.size() - 1).startsWith("HTTP_2 Bearer sk-dev-"), h2seen.toString());
    }

    @Test
    void unknownKeysAndDotSegmentsAreRefusedWithoutReachingTheUpstreamOrTheMetricLabels() throws Exception {
        int before = upstream.seen.size();
        Proc.Result nokey = curl(1001, "/nosuchkey-" + System.nanoTime() + "/v1/chat/completions", CHAT);
        assertEquals(404, status(nokey), nokey.out());
        assertTrue(nokey.out().contains("\"code\":\"no_such_key\""), nokey.out());
        Proc.Result dots = curl(1001, "/openai/v1/%2e%2e/%2e%2e/admin", CHAT);
        assertEquals(400, status(dots), dots.out());
        Proc.Result raw = Proc.as(1001, "curl", "-sS", "--path-as-is", "-o", "-", "-w", "\n%{http_code}", "--data-binary",
                CHAT, "http://127.0.0.1:" + gw + "/openai/v1/../../admin");
        assertEquals(400, status(raw), raw.out());
        assertEquals(before, upstream.seen.size(), "nothing reached the upstream");
        String metrics = io.keywarden.tests.support.Http.get("http://127.0.0.1:" + ops + "/metrics");
        assertFalse(metrics.contains("nosuchkey"), "a caller's key name is never a label");
    }

    /**
     * A connection made by one process and inherited by a process of another workload (fork, then
     * each side drops to its own uid): both hold the socket, so the gateway refuses it.
     */
    @org.junit.jupiter.params.ParameterizedTest(name = "over {0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"tcp", "unix"})
    void aSocketSharedByProcessesOfTwoWorkloadsIsRefused(String via) {
        String py = """
                import os, socket, sys, time
                if sys.argv[1].startswith("/"):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(sys.argv[1])
                else:
                    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
                pid = os.fork()
                if pid == 0:
                    os.setgid(1003); os.setuid(1003)    # workload scripted (python3 is its permitted exe)
                    time.sleep(5); os._exit(0)
                os.setgid(1001); os.setuid(1001)        # workload reviewer
                time.sleep(0.5)
                body = sys.argv[2].encode()
                s.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\\r\\nHost: gw\\r\\nContent-Type: application/json\\r\\n"
                          + b"Content-Length: " + str(len(body)).encode() + b"\\r\\n\\r\\n" + body)
                print(s.recv(65536).decode(errors="replace"))
                os.kill(pid, 9)
                """;
        Proc.Result r = Proc.run("/usr/bin/python3", "-c", py, via.equals("unix") ? socket.toString() : Integer.toString(gw),
                CHAT);
        assertTrue(r.out().startsWith("HTTP/1.1 403"), r.out() + r.err());
        assertTrue(r.out().contains("held by 2 processes"), r.out());
    }

    @Test
    void theUnixSocketAppliesTheReadersRulesToo() {
        Proc.Result curlAsScripted = Proc.as(1003, "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--unix-socket",
                socket.toString(), "-H", "Content-Type: application/json", "--data-binary", CHAT,
                "http://gw/openai/v1/chat/completions");
        assertEquals(403, status(curlAsScripted), "curl is not workload scripted's permitted exe: " + curlAsScripted.out());
    }
}
