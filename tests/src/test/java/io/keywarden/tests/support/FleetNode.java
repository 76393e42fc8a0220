package io.keywarden.tests.support;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The fleet tests' pieces: Debian's {@code redis-server} on a loopback port (from an RDB snapshot
 * when given one), and a "node": a real {@code keywarden dev} with its own mount, ledger, admin
 * socket and gateway, sharing one policy and one Redis with the others.
 */
public final class FleetNode {
    private FleetNode() {
    }

    /** redis-server on {@code port} (DEBUG allowed from loopback), answering PING before this returns. */
    public static Process redis(int port, Path rdb) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("/usr/bin/redis-server", "--port", Integer.toString(port), "--bind",
                "127.0.0.1", "--appendonly", "no", "--save", "", "--enable-debug-command", "local"));
        if (rdb != null) {
            cmd.addAll(List.of("--dir", rdb.getParent().toString(), "--dbfilename", rdb.getFileName().toString()));
        }
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        Await.until(java.time.Duration.ofSeconds(20), () -> Proc.run("redis-cli", "-p", Integer.toString(port), "ping").out()
                .contains("PONG"), () -> "redis-server did not start on port " + port);
        return p;
    }

    /** Stops a redis-server (SIGKILL with {@code kill}). */
    public static void stop(Process redis, boolean kill) throws InterruptedException {
        if (redis != null) {
            if (kill) {
                redis.destroyForcibly();
            } else {
                redis.destroy();
            }
            redis.waitFor(10, TimeUnit.SECONDS);
        }
    }

    /**
     * Starts node {@code name} under {@code dir/name} with the policy {@code dir/policy.yaml}, its
     * gateway on {@code gateway} in front of {@code upstream}, and {@code fleet} as the config's
     * fleet section (indented lines); returns once its gateway serves.
     */
    public static Daemon start(Path dir, String name, int gateway, int upstream, String fleet) throws Exception {
        return start(dir, name, gateway, upstream, fleet, Ports.free());
    }

    /** {@link #start}, with its ops endpoints (metrics) on {@code ops}. */
    public static Daemon start(Path dir, String name, int gateway, int upstream, String fleet, int ops) throws Exception {
        Path n = dir.resolve(name);
        Files.createDirectories(n);
        Files.writeString(n.resolve("config.yaml"), """
                policy: ../policy.yaml
                issuers: {dev: {type: dev}}
                gateway:
                  listen: 127.0.0.1:%d
                  upstreams: {openai: "http://127.0.0.1:%d"}
                fleet:
                %s""".formatted(gateway, upstream, fleet));
        Daemon d = Daemon.start(Map.of("NODE_NAME", name), "dev", "--mount", n.resolve("mnt").toString(),
                "--policy", dir.resolve("policy.yaml").toString(), "--audit", n.resolve("audit.jsonl").toString(),
                "--admin-socket", n.resolve("admin/admin.sock").toString(), "--listen", "127.0.0.1:" + ops,
                "--config", n.resolve("config.yaml").toString());
        d.awaitOut("gateway: http", 30);
        return d;
    }
}
