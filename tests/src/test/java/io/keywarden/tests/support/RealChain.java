package io.keywarden.tests.support;

import io.keywarden.testkit.Await;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The real chain (SPIRE server, agent and OIDC provider, OpenBao with the OpenAI engine, the
 * Admin API stub) as deploy/local/up.sh starts it, from the binaries deploy/local/install.sh
 * cached; stopped with down.sh. Tests skip, saying why, when the binaries are not installed.
 */
public final class RealChain implements AutoCloseable {
    public static final Path DEPLOY = Path.of("..", "deploy").toAbsolutePath().normalize();

    public final Path state;
    public final Map<String, String> env;
    public final long startMillis;
    private final Map<String, String> workloads = new LinkedHashMap<>();

    private RealChain(Path state, Map<String, String> env, long startMillis) {
        this.state = state;
        this.env = env;
        this.startMillis = startMillis;
    }

    /** Where install.sh keeps the binaries (as it decides it). */
    public static Path cache() {
        String c = System.getenv("KEYWARDEN_REAL_CACHE");
        return c != null ? Path.of(c) : Path.of(System.getProperty("user.home"), ".cache", "keywarden", "real");
    }

    public static RealChain up() throws Exception {
        Requirements.rootAndFuse();
        assumeTrue(Files.exists(cache().resolve("paths.env")), "the real SPIRE, OpenBao and OpenAI engine are not"
                + " installed (" + cache().resolve("paths.env") + " is missing): run deploy/local/install.sh, as .ci/run does");
        Path state = Files.createTempDirectory("kw-real-");
        // Workloads of other uids reach the agent's public socket inside it (as in /run/spire).
        Files.setPosixFilePermissions(state, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        long t0 = System.nanoTime();
        Proc.Result r = Proc.run("bash", DEPLOY.resolve("local/up.sh").toString(), "--state", state.toString());
        long ms = (System.nanoTime() - t0) / 1_000_000;
        if (!r.ok()) {
            Proc.run("bash", DEPLOY.resolve("local/down.sh").toString(), "--state", state.toString());
            throw new AssertionError("up.sh failed: " + r.out() + r.err());
        }
        Map<String, String> env = new HashMap<>();
        for (String line : Files.readAllLines(state.resolve("env"))) {
            if (line.startsWith("export ")) {
                String kv = line.substring(7);
                int eq = kv.indexOf('=');
                env.put(kv.substring(0, eq), kv.substring(eq + 1).replaceAll("^\"|\"$", ""));
            }
        }
        System.out.println("real chain up in " + ms + " ms (" + r.out().lines().filter(l -> l.contains("ready")).count()
                + " components)");
        return new RealChain(state, env, ms);
    }

    public String get(String name) {
        String v = env.get(name);
        if (v == null) {
            throw new AssertionError(name + " missing from " + state.resolve("env"));
        }
        return v;
    }

    Proc.Result spire(String... args) {
        List<String> cmd = new ArrayList<>(List.of(get("SPIRE_BIN") + "/spire-server"));
        cmd.add(args[0]);
        if (args.length > 1) {
            cmd.add(args[1]);
        }
        cmd.addAll(List.of("-socketPath", get("SPIRE_SERVER_SOCKET")));
        for (int i = 2; i < args.length; i++) {
            cmd.add(args[i]);
        }
        return Proc.run(cmd.toArray(String[]::new));
    }

    /** Registers {@code spiffe://example.org/ns/agents/sa/<name>} for processes of {@code uid}; waits until the agent has it. */
    public String registerUid(String name, int uid) throws Exception {
        String id = "spiffe://" + get("TRUST_DOMAIN") + "/ns/agents/sa/" + name;
        Proc.Result r = spire("entry", "create", "-parentID", get("NODE_SPIFFE_ID"), "-spiffeID", id, "-selector",
                "unix:uid:" + uid);
        if (!r.ok()) {
            throw new AssertionError("entry create failed: " + r.out() + r.err());
        }
        workloads.put(name, id);
        // The agent learns new entries on its next sync (1 s here): wait until it issues this one.
        Await.until(java.time.Duration.ofSeconds(30), () -> Proc.as(uid, get("SPIRE_BIN") + "/spire-agent", "api", "fetch",
                "jwt", "-audience", "probe", "-socketPath", get("SPIRE_AGENT_SOCKET")).out().contains(id),
                () -> "the SPIRE agent never issued " + id + " to uid " + uid);
        return id;
    }

    /** Runs deploy/openbao/setup.sh for every workload registered so far. */
    public void setup(String keyTtl, String tokenTtl) throws Exception {
        StringBuilder w = new StringBuilder();
        workloads.forEach((n, id) -> w.append(w.length() == 0 ? "" : " ").append(n).append('=').append(id));
        Map<String, String> e = new HashMap<>(env);
        e.put("WORKLOADS", w.toString());
        e.put("KEY_TTL", keyTtl);
        e.put("TOKEN_TTL", tokenTtl);
        Proc.Result r = Proc.withEnv(e, "sh", DEPLOY.resolve("openbao/setup.sh").toString());
        if (!r.ok()) {
            throw new AssertionError("setup.sh failed: " + r.out() + r.err());
        }
    }

    /** The stub's call log: one "METHOD PATH STATUS" line per request. */
    public List<String> stubCalls() throws IOException {
        return Files.readAllLines(Path.of(get("OPENAI_STUB_LOG")));
    }

    public long count(String prefix) throws IOException {
        return stubCalls().stream().filter(l -> l.startsWith(prefix)).count();
    }

    public int pid(String component) throws IOException {
        return Integer.parseInt(Files.readString(state.resolve("pids/" + component + ".pid")).trim());
    }

    /** Stops one component (its whole process group), as down.sh does. */
    public void stop(String component) throws Exception {
        int pid = pid(component);
        Proc.run("kill", "-TERM", "--", "-" + pid);
        Await.until(java.time.Duration.ofSeconds(20), () -> !Proc.run("kill", "-0", Integer.toString(pid)).ok(),
                () -> component + " did not stop");
    }

    /** Starts a component again with its start script ({@code start/<script>.sh}). */
    public void start(String component, String script) throws Exception {
        Process p = new ProcessBuilder("setsid", "bash", state.resolve("start/" + script + ".sh").toString())
                .redirectOutput(ProcessBuilder.Redirect.appendTo(state.resolve("logs/" + component + ".log").toFile()))
                .redirectErrorStream(true).start();
        Files.writeString(state.resolve("pids/" + component + ".pid"), Long.toString(p.pid()));
    }

    /** A `keywarden run` config against this chain (SPIRE identity, Vault issuer, FUSE at {@code mnt}). */
    public Path keywardenConfig(Path dir, Path mnt, int opsPort) throws IOException {
        return Files.writeString(dir.resolve("config.yaml"), """
                node: real-chain
                policy: policy.yaml
                identity: {provider: spire, audience: vault, spire: {adminSocket: "%s"}}
                issuer:
                  provider: vault
                  vault: {address: "%s", authMount: jwt, timeout: 10s}
                delivery: {mode: fuse, path: "%s"}
                audit: {file: audit.jsonl}
                ops: {listen: "127.0.0.1:%d"}
                admin: {socket: "%s"}
                revokeOnShutdown: true
                """.formatted(get("SPIRE_ADMIN_SOCKET"), get("BAO_ADDR"), mnt, opsPort, dir.resolve("admin/admin.sock")));
    }

    @Override
    public void close() {
        Proc.Result r = Proc.run("bash", DEPLOY.resolve("local/down.sh").toString(), "--state", state.toString());
        if (!r.ok()) {
            System.err.println("down.sh: " + r.out() + r.err());
        }
        Proc.run("rm", "-rf", state.toString());
    }
}
