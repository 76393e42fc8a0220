package io.keywarden.tests.bench;

import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.io.InputStream;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Side by side in one run, on the same local upstream stub: direct, through keywarden's gateway,
 * and through LiteLLM's proxy (with the same model allowlist and a proxy budget). A load generator
 * of uid 1001 (the workload) sends chat completions over HTTP/1.1 keep-alive; prints added latency
 * p50/p99 (non-streaming), time to the first streamed byte, and requests per second with 1 and 16
 * connections. Direct is measured again just before every column and each column is read against
 * that run, so a machine that drifts during the bench charges no column for its place in the order.
 * Asserts nothing about time.
 *
 * <p>LiteLLM comes from {@code $KW_LITELLM} or {@code ~/.cache/keywarden/litellm-venv/bin/litellm}
 * (install: {@code python3 -m venv ~/.cache/keywarden/litellm-venv && ~/.cache/keywarden/litellm-venv/bin/pip
 * install 'litellm[proxy]'}); without it the LiteLLM column is skipped and says so.
 * Run: {@code ./mvnw -B -q install -DskipTests -DskipITs && ./mvnw -B -Pbench -pl tests verify -Dit.test=GatewayBench}
 */
class GatewayBench {
    static final double SECONDS = Double.parseDouble(System.getProperty("bench.seconds", "8"));
    static final double WARMUP = Double.parseDouble(System.getProperty("bench.warmup", "3"));
    static final String CHAT = "{\"model\":\"gpt-4.1-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    static final String STREAM = CHAT.replace("}]}", "}],\"stream\":true}");
    /** An agent's request as it grows: a system prompt and history of 32 KiB of text in its messages. */
    static final String LARGE = "{\"model\":\"gpt-4.1-mini\",\"messages\":[{\"role\":\"system\",\"content\":\""
            + "You are a careful assistant; answer with \\\"facts\\\" and cite them.\\n".repeat(490)
            + "\"},{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":256}";
    static final String DIRECT_KEY = "sk-dev-" + "B".repeat(48);

    @Test
    void directVersusKeywardenVersusLiteLlm() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-gwbench-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path loadgen = loadGen(dir);
        Path mnt = dir.resolve("mnt");
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai: {}
                workloads:
                  - name: bench
                    spiffeId: spiffe://example.org/bench
                    selectors: [unix:uid:1001]
                    keys: [openai]
                    guard:
                      models: ["gpt-4.1-mini"]
                      budget: {tokensPerHour: 100000000000, requestsPerMinute: 100000000}
                      onBreach: block
                """);
        Process litellm = null;
        Process nginx = null;
        Process noop = null;
        Path sock = dir.resolve("gw/gateway.sock");
        try (io.keywarden.tests.gateway.UpstreamStub upstream = io.keywarden.tests.gateway.UpstreamStub.unrecorded()) {
            int gw = Ports.free();
            try (Daemon d = Daemon.start(Map.of(), "dev", "--mount", mnt.toString(), "--policy",
                    dir.resolve("policy.yaml").toString(), "--audit", dir.resolve("audit.jsonl").toString(),
                    "--admin-socket", dir.resolve("admin.sock").toString(), "--listen", "127.0.0.1:" + Ports.free(),
                    "--gateway", "127.0.0.1:" + gw, "--gateway-socket", sock.toString(), "--upstream", "openai=http://127.0.0.1:" + upstream.port())) {
                d.awaitOut("gateway:", 30);
                // name -> {host (or unix:PATH), port, path, authorization}
                Map<String, String[]> targets = new LinkedHashMap<>();
                targets.put("direct", new String[] {"127.0.0.1", Integer.toString(upstream.port()), "/v1/chat/completions",
                    "Bearer " + DIRECT_KEY});
                int np = Ports.free();
                nginx = startNginx(dir, np, upstream.port());
                if (nginx != null) {
                    targets.put("nginx", new String[] {"127.0.0.1", Integer.toString(np), "/v1/chat/completions",
                        "Bearer " + DIRECT_KEY});
                }
                Path noopSock = dir.resolve("noop/noop.sock");
                noop = startNoopProxy(dir, noopSock, upstream.port());
                if (noop != null) {
                    if (Files.exists(noopSock.resolveSibling("netty.sock"))) {
                        targets.put("netty-noop", new String[] {"unix:" + noopSock.resolveSibling("netty.sock"), "0",
                            "/v1/chat/completions", "Bearer " + DIRECT_KEY});
                    }
                    targets.put("vertx-noop", new String[] {"unix:" + noopSock, "0", "/v1/chat/completions",
                        "Bearer " + DIRECT_KEY});
                    if (Files.exists(noopSock.resolveSibling("relay.sock"))) {
                        targets.put("relay-noop", new String[] {"unix:" + noopSock.resolveSibling("relay.sock"), "0",
                            "/v1/chat/completions", "Bearer " + DIRECT_KEY});
                    }
                }
                targets.put("keywarden", new String[] {"127.0.0.1", Integer.toString(gw), "/openai/v1/chat/completions",
                    "Bearer placeholder"});
                targets.put("kw-unix", new String[] {"unix:" + sock, "0", "/openai/v1/chat/completions", "Bearer placeholder"});
                Path bin = litellmBinary();
                int lp = Ports.free();
                if (bin != null) {
                    litellm = startLiteLlm(bin, dir, lp, upstream.port());
                    targets.put("litellm", new String[] {"127.0.0.1", Integer.toString(lp), "/v1/chat/completions",
                        "Bearer sk-bench-master"});
                } else {
                    System.out.println("LiteLLM not installed (set KW_LITELLM or see the class comment): its column is skipped");
                }
                String only = System.getProperty("bench.targets", "");
                if (!only.isEmpty()) {
                    targets.keySet().retainAll(List.of(("direct," + only).split(",")));
                }
                System.out.printf("== gateway: %d s per run after %d s warm-up; 2 vCPU shared by the load generator,"
                        + " the stub upstream and the proxy ==%n", (int) SECONDS, (int) WARMUP);
                System.out.printf("%-10s %-22s %9s %9s %9s %9s %9s %7s%n", "target", "run", "rps", "p50 µs", "p99 µs",
                        "ttfb p50", "ttfb p99", "errors");
                // run -> target -> {its figures, those of the direct run just before it}: direct is measured
                // beside every column, so a machine that drifts during a run (its other load, the JIT,
                // the stub) charges no column measured later.
                Map<String, Map<String, long[][]>> results = new LinkedHashMap<>();
                // Back to back, then at an agent's pace (20 requests a second on one connection: the
                // code compiled by then, each request arriving at an idle machine).
                for (String run : new String[] {"1 conn", "1 conn, 32 KiB body", "16 conns", "20/s, 1 conn",
                    "stream, 1 conn"}) {
                    for (String t : targets.keySet()) {
                        if (t.equals("direct")) {
                            continue;
                        }
                        long[] direct = load(dir, loadgen, targets.get("direct"), run);
                        long[] r = load(dir, loadgen, targets.get(t), run);
                        results.computeIfAbsent(run, k -> new LinkedHashMap<>()).put(t, new long[][] {r, direct});
                        for (var line : List.of(Map.entry("direct", direct), Map.entry(t, r))) {
                            long[] x = line.getValue();
                            System.out.printf("%-10s %-22s %9d %9d %9d %9d %9d %7d%n", line.getKey(), run, x[1], x[2],
                                    x[3], x[4], x[5], x[6]);
                        }
                    }
                }
                System.out.println("-- added over the direct run beside it (µs) and throughput ratios --");
                for (var e : results.entrySet()) {
                    for (var t : e.getValue().entrySet()) {
                        long[] r = t.getValue()[0];
                        long[] direct = t.getValue()[1];
                        double ratio = (double) r[1] / Math.max(1, direct[1]);
                        StringBuilder over = new StringBuilder();
                        for (String floor : List.of("nginx", "vertx-noop")) {
                            long[][] f = e.getValue().get(floor);
                            if (f != null && !t.getKey().equals(floor) && (floor.equals("nginx")
                                    || t.getKey().startsWith("k") || t.getKey().equals("relay-noop"))) {
                                long fAdded = f[0][2] - f[1][2];
                                over.append(String.format(", %.2fx of %s's ratio (+%d µs p50 over it)",
                                        ratio / Math.max(1e-9, (double) f[0][1] / Math.max(1, f[1][1])), floor,
                                        r[2] - direct[2] - fAdded));
                            }
                        }
                        System.out.printf("%-10s %-22s added p50 %6d µs, p99 %6d µs, ttfb p50 %6d µs; rps %.2fx of direct%s%n",
                                t.getKey(), e.getKey(), r[2] - direct[2], r[3] - direct[3], r[4] - direct[4], ratio, over);
                    }
                    long[][] kw = e.getValue().get("keywarden");
                    long[][] ll = e.getValue().get("litellm");
                    if (ll != null && kw != null) {
                        System.out.printf("%-10s %-22s keywarden/litellm throughput %.1fx%n", "ratio", e.getKey(),
                                (double) kw[0][1] / Math.max(1, ll[0][1]));
                    }
                }
                d.stop();
            }
        } finally {
            if (noop != null) {
                noop.destroy();
                noop.waitFor();
            }
            if (nginx != null) {
                nginx.destroy();
                nginx.waitFor();
            }
            if (litellm != null) {
                litellm.descendants().forEach(ProcessHandle::destroy);
                litellm.destroy();
                litellm.waitFor();
            }
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    /** The load generator's source copied into {@code dir}, readable by the workload's uid that runs it. */
    static Path loadGen(Path dir) throws java.io.IOException {
        Path loadgen = dir.resolve("LoadGen.java");
        try (InputStream in = GatewayBench.class.getResourceAsStream("/bench/LoadGen.java")) {
            Files.copy(in, loadgen, StandardCopyOption.REPLACE_EXISTING);
        }
        Files.setPosixFilePermissions(loadgen, PosixFilePermissions.fromString("rw-r--r--"));
        return loadgen;
    }

    /** One run ({@code "1 conn"}, {@code "16 conns"}, …) against a target {host, port, path, authorization}. */
    static long[] load(Path dir, Path loadgen, String[] target, String run) {
        int conns = run.startsWith("16") ? 16 : 1;
        String body = run.startsWith("stream") ? STREAM : run.contains("KiB") ? LARGE : CHAT;
        return load(dir, loadgen, target[0], Integer.parseInt(target[1]), target[2], conns, body, target[3],
                run.startsWith("20/s") ? 20 : 0);
    }

    /** {requests, rps, p50, p99, ttfb50, ttfb99, errors}. */
    static long[] load(Path dir, Path loadgen, int port, String path, int conns, String body, String auth) {
        return load(dir, loadgen, "127.0.0.1", port, path, conns, body, auth);
    }

    /** {@code host}: an address, or {@code unix:PATH}. */
    static long[] load(Path dir, Path loadgen, String host, int port, String path, int conns, String body, String auth) {
        return load(dir, loadgen, host, port, path, conns, body, auth, 0);
    }

    /** {@code pace}: requests a second per connection, 0 for back to back. */
    static long[] load(Path dir, Path loadgen, String host, int port, String path, int conns, String body, String auth,
                       double pace) {
        Proc.Result r = Proc.as(1001, Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xss512k",
                loadgen.toString(), host, Integer.toString(port), path, Integer.toString(conns),
                Double.toString(SECONDS), Double.toString(WARMUP), body, auth, Double.toString(pace));
        Map<String, Long> m = new LinkedHashMap<>();
        for (String kv : r.out().trim().split(" ")) {
            int eq = kv.indexOf('=');
            if (eq > 0) {
                m.put(kv.substring(0, eq), (long) Double.parseDouble(kv.substring(eq + 1)));
            }
        }
        if (!m.containsKey("rps")) {
            throw new AssertionError("load generator failed: " + r.out() + r.err());
        }
        return new long[] {m.get("requests"), m.get("rps"), m.get("p50_us"), m.get("p99_us"), m.get("ttfb_p50_us"),
            m.get("ttfb_p99_us"), m.get("errors")};
    }

    /**
     * Vert.x's HTTP server and client relaying with no logic ({@code /bench/NoopProxy.java}, run from
     * keywarden.jar's classes with the daemon's JVM flags, one event loop per CPU as the gateway):
     * the floor of an HTTP hop on keywarden's own stack; and the same behind keywarden's
     * {@code WriterRelay} ({@code relay-noop}): what the relay alone adds; and a proxy on Netty's HTTP
     * codecs alone in the same process ({@code netty-noop}): what Vert.x's server and client cost over
     * Netty. Null (and said) when it
     * does not start.
     */
    static Process startNoopProxy(Path dir, Path sock, int upstream) throws Exception {
        Path src = dir.resolve("NoopProxy.java");
        try (InputStream in = GatewayBench.class.getResourceAsStream("/bench/NoopProxy.java")) {
            Files.copy(in, src, StandardCopyOption.REPLACE_EXISTING);
        }
        Files.createDirectories(sock.getParent());
        Files.setPosixFilePermissions(sock.getParent(), PosixFilePermissions.fromString("rwxr-xr-x"));
        List<String> cmd = new java.util.ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString()));
        String jvm = System.getProperty("keywarden.jvmOpts", io.keywarden.tests.support.Daemon.shippedJvmFlags());
        if (!jvm.isBlank()) {
            cmd.addAll(List.of(jvm.trim().split("\\s+")));
        }
        cmd.addAll(List.of("-cp", io.keywarden.tests.support.Daemon.jar().toString(), src.toString(), sock.toString(),
                Integer.toString(upstream), Integer.toString(Runtime.getRuntime().availableProcessors()),
                sock.resolveSibling("relay.sock").toString(), sock.resolveSibling("netty.sock").toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        java.io.BufferedReader out = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream(),
                java.nio.charset.StandardCharsets.UTF_8));
        String line = out.readLine();
        if (!"ready".equals(line)) {
            p.destroy();
            System.out.println("the Vert.x no-op proxy did not start (" + line + "): its column is skipped");
            return null;
        }
        Thread drain = new Thread(() -> {
            try {
                out.transferTo(java.io.Writer.nullWriter());
            } catch (java.io.IOException e) {
                // ended
            }
        });
        drain.setDaemon(true);
        drain.start();
        Files.setPosixFilePermissions(sock, PosixFilePermissions.fromString("rw-rw-rw-"));
        for (String other : new String[] {"relay.sock", "netty.sock"}) {
            if (Files.exists(sock.resolveSibling(other))) {
                Files.setPosixFilePermissions(sock.resolveSibling(other), PosixFilePermissions.fromString("rw-rw-rw-"));
            }
        }
        return p;
    }

    /**
     * nginx as a reverse proxy with no logic (the floor for an HTTP hop): keep-alive both ways, one
     * worker per vCPU, no logs, bodies streamed both ways (a request body is not spooled first);
     * null (and said) when nginx is not installed.
     */
    static Process startNginx(Path dir, int port, int upstream) throws Exception {
        Path bin = Path.of("/usr/sbin/nginx");
        if (!Files.isExecutable(bin)) {
            System.out.println("nginx not installed (apt-get install nginx-light): its column is skipped");
            return null;
        }
        Path conf = dir.resolve("nginx.conf");
        Files.createDirectories(dir.resolve("nginx"));
        Files.writeString(conf, """
                worker_processes auto;
                pid %1$s/nginx/nginx.pid;
                error_log %1$s/nginx/error.log error;
                events { worker_connections 1024; }
                http {
                    access_log off;
                    keepalive_requests 100000000;
                    client_body_temp_path %1$s/nginx/body;
                    proxy_temp_path %1$s/nginx/proxy;
                    upstream stub { server 127.0.0.1:%2$d; keepalive 32; keepalive_requests 100000000; }
                    server {
                        listen 127.0.0.1:%3$d;
                        location / {
                            proxy_pass http://stub;
                            proxy_http_version 1.1;
                            proxy_set_header Connection "";
                            proxy_buffering off;
                            proxy_request_buffering off;
                            client_body_buffer_size 64k;
                        }
                    }
                }
                """.formatted(dir, upstream, port));
        Process p = new ProcessBuilder(bin.toString(), "-p", dir.resolve("nginx").toString(), "-c", conf.toString(), "-g",
                "daemon off;").redirectErrorStream(true).redirectOutput(dir.resolve("nginx/out.log").toFile()).start();
        try {
            io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(20), () -> {
                if (!p.isAlive()) {
                    throw new AssertionError("nginx did not start: " + Files.readString(dir.resolve("nginx/out.log")));
                }
                try (Socket s = new Socket("127.0.0.1", port)) {
                    return true;
                } catch (java.io.IOException e) {
                    return false;
                }
            }, () -> "nginx did not listen within 20 s");
        } catch (AssertionError | RuntimeException e) {
            p.destroy();
            throw e;
        }
        return p;
    }

    static Path litellmBinary() {
        String env = System.getenv("KW_LITELLM");
        Path p = env != null ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".cache/keywarden/litellm-venv/bin/litellm");
        return Files.isExecutable(p) ? p : null;
    }

    static Process startLiteLlm(Path bin, Path dir, int port, int upstream) throws Exception {
        return startLiteLlm(bin, dir, "litellm", port, 2, """
                model_list:
                  - model_name: gpt-4.1-mini
                    litellm_params:
                      model: openai/gpt-4.1-mini
                      api_base: http://127.0.0.1:%d/v1
                      api_key: %s
                general_settings:
                  master_key: sk-bench-master
                litellm_settings:
                  max_budget: 1000000
                  budget_duration: 1h
                  telemetry: false
                """.formatted(upstream, DIRECT_KEY));
    }

    /** LiteLLM's proxy on {@code port} with {@code config} (YAML) and {@code workers} workers; its log in {@code dir/name.log}. */
    static Process startLiteLlm(Path bin, Path dir, String name, int port, int workers, String config) throws Exception {
        Path cfg = dir.resolve(name + ".yaml");
        Path log = dir.resolve(name + ".log");
        Files.writeString(cfg, config);
        ProcessBuilder pb = new ProcessBuilder(bin.toString(), "--config", cfg.toString(), "--host", "127.0.0.1",
                "--port", Integer.toString(port), "--num_workers", Integer.toString(workers));
        pb.environment().put("LITELLM_LOCAL_MODEL_COST_MAP", "True");
        pb.environment().put("LITELLM_LOG", "ERROR");
        pb.redirectErrorStream(true).redirectOutput(log.toFile());
        Process p = pb.start();
        long end = System.currentTimeMillis() + 120_000;
        while (System.currentTimeMillis() < end) {
            try (Socket s = new Socket("127.0.0.1", port)) {
                Thread.sleep(2000);
                return p;
            } catch (java.io.IOException e) {
                if (!p.isAlive()) {
                    throw new AssertionError("LiteLLM exited: " + Files.readString(log));
                }
                Thread.sleep(500);
            }
        }
        throw new AssertionError("LiteLLM did not listen within 120 s: " + Files.readString(log));
    }
}
