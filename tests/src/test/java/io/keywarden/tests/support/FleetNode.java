package io.keywarden.tests.support;

import io.keywarden.testkit.Await;
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

    /**
     * A Redis Cluster on loopback: {@code masters} masters, each with one replica (node timeout
     * 1 s, so a replica takes over about two seconds after its master dies), created with
     * {@code redis-cli --cluster create}; returns once every node says {@code cluster_state:ok}.
     * The processes are in port order; {@link #stop} each.
     */
    public static Map<Integer, Process> cluster(Path dir, int masters) throws Exception {
        Map<Integer, Process> nodes = new java.util.LinkedHashMap<>();
        List<String> create = new ArrayList<>(List.of("redis-cli", "--cluster", "create"));
        try {
            for (int i = 0; i < masters * 2; i++) {
                int port = Ports.free();
                Path d = dir.resolve("redis-" + port);
                Files.createDirectories(d);
                Process p = new ProcessBuilder("/usr/bin/redis-server", "--port", Integer.toString(port), "--bind", "127.0.0.1",
                        "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
                        "--cluster-port", Integer.toString(Ports.free()), "--dir", d.toString(), "--appendonly", "no",
                        "--save", "", "--enable-debug-command", "local").redirectErrorStream(true)
                        .redirectOutput(d.resolve("log").toFile()).start();
                nodes.put(port, p);
                Await.until(java.time.Duration.ofSeconds(20), () -> Proc.run("redis-cli", "-p", Integer.toString(port), "ping")
                        .out().contains("PONG"), () -> "redis-server (cluster) did not start on port " + port);
                create.add("127.0.0.1:" + port);
            }
            create.addAll(List.of("--cluster-replicas", "1", "--cluster-yes"));
            Proc.Result made = Proc.run(create.toArray(String[]::new));
            if (!made.ok()) {
                throw new IllegalStateException("redis-cli --cluster create failed: " + made.out() + made.err());
            }
            for (int port : nodes.keySet()) {
                Await.until(java.time.Duration.ofSeconds(30), () -> Proc.run("redis-cli", "-p", Integer.toString(port),
                        "cluster", "info").out().contains("cluster_state:ok"), () -> "the cluster is not ok on " + port);
            }
            return nodes;
        } catch (Exception | AssertionError e) {
            for (Process p : nodes.values()) {
                stop(p, true);
            }
            throw e;
        }
    }

    /**
     * A master, its replica and three sentinels watching it as {@code name} (quorum 2, down after
     * 1 s): the processes by port, the master's first, then the replica's, then the sentinels'.
     */
    public static Map<Integer, Process> sentinels(Path dir, String name) throws Exception {
        Map<Integer, Process> all = new java.util.LinkedHashMap<>();
        try {
            int master = Ports.free();
            all.put(master, redis(master, null));
            int replica = Ports.free();
            Process r = new ProcessBuilder("/usr/bin/redis-server", "--port", Integer.toString(replica), "--bind", "127.0.0.1",
                    "--appendonly", "no", "--save", "", "--replicaof", "127.0.0.1", Integer.toString(master))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            all.put(replica, r);
            Await.until(java.time.Duration.ofSeconds(20), () -> Proc.run("redis-cli", "-p", Integer.toString(replica), "info",
                    "replication").out().contains("master_link_status:up"), () -> "the replica did not sync");
            for (int i = 0; i < 3; i++) {
                int port = Ports.free();
                Path d = dir.resolve("sentinel-" + port);
                Files.createDirectories(d);
                Files.writeString(d.resolve("sentinel.conf"), """
                        port %d
                        bind 127.0.0.1
                        dir %s
                        sentinel monitor %s 127.0.0.1 %d 2
                        sentinel down-after-milliseconds %s 1000
                        sentinel failover-timeout %s 10000
                        """.formatted(port, d, name, master, name, name));
                Process s = new ProcessBuilder("/usr/bin/redis-server", d.resolve("sentinel.conf").toString(), "--sentinel")
                        .redirectErrorStream(true).redirectOutput(d.resolve("log").toFile()).start();
                all.put(port, s);
                Await.until(java.time.Duration.ofSeconds(20), () -> Proc.run("redis-cli", "-p", Integer.toString(port),
                        "sentinel", "replicas", name).out().contains(Integer.toString(replica)),
                        () -> "sentinel " + port + " did not find the replica");
            }
            return all;
        } catch (Exception | AssertionError e) {
            for (Process p : all.values()) {
                stop(p, true);
            }
            throw e;
        }
    }

    /** The port of the Cluster master that serves {@code key}'s slot, asked of the node on {@code anyPort}. */
    public static int clusterMasterOf(int anyPort, String key) {
        int slot = Integer.parseInt(Proc.run("redis-cli", "-p", Integer.toString(anyPort), "cluster", "keyslot", key).out()
                .trim());
        for (String line : Proc.run("redis-cli", "-p", Integer.toString(anyPort), "cluster", "nodes").out().split("\n")) {
            String[] f = line.trim().split(" ");
            if (f.length < 9 || !f[2].contains("master") || f[2].contains("fail")) {
                continue;
            }
            for (int i = 8; i < f.length; i++) {
                String[] range = f[i].split("-");
                int lo = Integer.parseInt(range[0]);
                int hi = range.length > 1 ? Integer.parseInt(range[1]) : lo;
                if (slot >= lo && slot <= hi) {
                    return Integer.parseInt(f[1].substring(f[1].indexOf(':') + 1, f[1].indexOf('@')));
                }
            }
        }
        throw new IllegalStateException("no live master serves slot " + slot);
    }

    /** Unmounts what nodes {@code names} under {@code dir} still have mounted, then removes {@code dir} (null: nothing). */
    public static void removeNodes(Path dir, String... names) throws Exception {
        if (dir == null) {
            return;
        }
        for (String n : names) {
            Path m = dir.resolve(n).resolve("mnt");
            if (io.keywarden.linux.Mounts.at(m).isPresent()) {
                io.keywarden.linux.Mounts.detach(m);
            }
        }
        Proc.run("rm", "-rf", dir.toString());
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
