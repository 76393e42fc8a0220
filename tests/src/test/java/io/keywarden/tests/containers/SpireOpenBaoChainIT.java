package io.keywarden.tests.containers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.model.Capability;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.linux.Mounts;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.RunConfig;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.containers.BindMode;
import org.testcontainers.containers.Container.ExecResult;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.Network;
import org.testcontainers.containers.wait.strategy.Wait;
import org.testcontainers.images.builder.ImageFromDockerfile;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.utility.MountableFile;

/**
 * The whole chain with real images (Testcontainers; skipped where no Docker engine runs on this
 * host): a SPIRE server, its OIDC discovery provider and a SPIRE agent with the Delegated Identity
 * API, all configured with the files in deploy/spire; OpenBao in dev mode with the community OpenAI
 * secrets engine (deploy/openbao/Dockerfile) configured by deploy/openbao/setup.sh; the OpenAI API
 * stub of the Compose stack. keywarden runs here, as the real daemon, with `identity: spire` and
 * `issuer: vault`, and serves uid 1001's process the key that OpenBao minted at the stub.
 *
 * <p>It shows: SPIRE attests the reader by PID and hands keywarden its JWT-SVID; OpenBao verifies it
 * against SPIRE's OIDC discovery document and binds the role to the SPIFFE ID; the key is live at
 * the (stub) provider; uid 1002, which SPIRE does not know, gets EACCES; the key is refreshed before
 * its 40 s TTL and the old lease's revocation kills the old key at the provider; stopping keywarden
 * kills the last one. Set -Dkeywarden.it.openbaoImage=IMAGE to use a prebuilt OpenBao+plugin image
 * instead of building deploy/openbao (which downloads Go modules).
 */
@Testcontainers(disabledWithoutDocker = true)
class SpireOpenBaoChainIT {
    static final Path DEPLOY = Path.of(System.getProperty("keywarden.repo", ".."), "deploy");
    static final String SPIRE = "1.13.3";
    static final String NODE = "spiffe://example.org/node/it";
    static final String READER = "spiffe://example.org/ns/agents/sa/reviewer";
    static final String ROOT_TOKEN = "dev-only-root";

    @Test
    void spireAttestsOpenBaoIssuesKeywardenServesRefreshesAndRevokes() throws Exception {
        Requirements.rootAndFuse();
        Path work = Files.createTempDirectory("kw-chain-");
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mnt = work.resolve("mnt");
        try {
            HostDocker.requireSameHost(work);
            Path serverApi = shared(work.resolve("spire-server-api"));
            Path admin = shared(work.resolve("spire-admin"));
            try (Network net = Network.newNetwork();
                    GenericContainer<?> server = spire("spire-server", net)
                            .withCopyFileToContainer(MountableFile.forHostPath(DEPLOY.resolve("spire/server.conf"), 0644),
                                    "/etc/spire/server.conf")
                            .withFileSystemBind(serverApi.toString(), "/tmp/spire-server/private", BindMode.READ_WRITE)
                            .withCommand("-config", "/etc/spire/server.conf");
                    GenericContainer<?> oidc = spire("oidc-discovery-provider", net).withNetworkAliases("spire-oidc")
                            .withCopyFileToContainer(MountableFile.forHostPath(DEPLOY.resolve("spire/oidc-discovery-provider.conf"),
                                    0644), "/etc/spire/oidc.conf")
                            .withFileSystemBind(serverApi.toString(), "/tmp/spire-server/private", BindMode.READ_WRITE)
                            .withCommand("-config", "/etc/spire/oidc.conf");
                    GenericContainer<?> stub = loopbackOnly(new GenericContainer<>(Images.get("PYTHON_IMAGE", "python:3.12-slim"))
                            .withNetwork(net).withNetworkAliases("openai-stub"), 8080)
                            .withCopyFileToContainer(MountableFile.forHostPath(DEPLOY.resolve("compose/openai-stub/stub.py"), 0644),
                                    "/stub/stub.py")
                            .withCommand("python3", "/stub/stub.py")
                            .waitingFor(Wait.forHttp("/health").forPort(8080));
                    GenericContainer<?> bao = openBao(net)) {
                server.start();
                awaitExec(server, Duration.ofSeconds(60), "/opt/spire/bin/spire-server", "healthcheck");
                oidc.start();
                stub.start();
                bao.start();

                // The node: a join token for a fixed alias, the trust bundle, deploy/spire/agent.conf rendered.
                String token = exec(server, "/opt/spire/bin/spire-server", "token", "generate", "-spiffeID", NODE, "-ttl", "600")
                        .lines().filter(l -> l.startsWith("Token: ")).map(l -> l.substring(7).trim()).findFirst()
                        .orElseThrow(() -> new AssertionError("no join token from the SPIRE server"));
                Files.writeString(work.resolve("bundle.pem"),
                        exec(server, "/opt/spire/bin/spire-server", "bundle", "show", "-format", "pem"));
                Proc.Result conf = Proc.run("sh", DEPLOY.resolve("spire/agent-conf.sh").toString(),
                        DEPLOY.resolve("spire/agent.conf").toString(), token, "/etc/spire/bundle.pem",
                        work.resolve("agent.conf").toString());
                assertTrue(conf.ok(), conf.err());
                // keywarden (this JVM's child, root) is the delegate; the reader is uid 1001.
                exec(server, "/opt/spire/bin/spire-server", "entry", "create", "-parentID", NODE, "-spiffeID",
                        "spiffe://example.org/keywarden", "-selector", "unix:uid:0");
                exec(server, "/opt/spire/bin/spire-server", "entry", "create", "-parentID", NODE, "-spiffeID", READER,
                        "-selector", "unix:uid:1001");

                try (GenericContainer<?> agent = spire("spire-agent", net)
                        // pid: host to see the readers; CAP_SYS_PTRACE to read /proc/PID/exe (discover_workload_path)
                        // of processes that hold capabilities it does not, keywarden as host root among them.
                        .withCreateContainerCmdModifier(c -> c.getHostConfig().withPidMode("host")
                                .withCapAdd(Capability.SYS_PTRACE))
                        .withCopyFileToContainer(MountableFile.forHostPath(work.resolve("agent.conf"), 0600), "/etc/spire/agent.conf")
                        .withCopyFileToContainer(MountableFile.forHostPath(work.resolve("bundle.pem"), 0644), "/etc/spire/bundle.pem")
                        .withFileSystemBind(admin.toString(), "/run/spire/admin", BindMode.READ_WRITE)
                        .withFileSystemBind(DockerClientFactory.instance().getRemoteDockerUnixSocketPath(), "/var/run/docker.sock",
                                BindMode.READ_ONLY)
                        .withCommand("-config", "/etc/spire/agent.conf")) {
                    agent.start();
                    Await.until(Duration.ofSeconds(60), () -> Files.exists(admin.resolve("admin.sock")),
                            () -> "the agent's admin socket did not appear; agent log:\n" + agent.getLogs());

                    ExecResult setup = bao.execInContainer("sh", "-c", "OPENAI_PLUGIN_SHA256=$(sha256sum "
                            + "/openbao/plugins/keywarden-openai-engine | cut -d' ' -f1) BAO_ADDR=http://127.0.0.1:8200 "
                            + "BAO_TOKEN=" + ROOT_TOKEN + " OIDC_URL=http://spire-oidc:8080 OPENAI_API_URL=http://openai-stub:8080/v1 "
                            + "OPENAI_ADMIN_KEY=sk-admin-stub OPENAI_ORG_ID=org-stub OPENAI_PROJECT_ID=proj_it KEY_TTL=40s "
                            + "WORKLOADS=reviewer=" + READER + " sh /setup/setup.sh");
                    assertEquals(0, setup.getExitCode(), "setup.sh: " + setup.getStdout() + setup.getStderr());

                    runKeywarden(work, mnt, "http://" + bao.getHost() + ":" + bao.getMappedPort(8200), admin.resolve("admin.sock"),
                            "http://" + stub.getHost() + ":" + stub.getMappedPort(8080), agent::getLogs);
                }
            }
        } finally {
            Proc.run("sh", "-c", "grep -q '" + mnt + "' /proc/mounts && umount -l '" + mnt + "'; rm -rf '" + work + "'");
        }
    }

    void runKeywarden(Path work, Path mnt, String baoAddress, Path adminSocket, String stubAddress,
                      java.util.function.Supplier<String> agentLog) throws Exception {
        Files.writeString(work.resolve("policy.yaml"), """
                keys:
                  openai:
                    vault: {role: "{workload}", path: "openai/creds/{workload}", ttl: 40s}
                    refreshAt: 0.5
                    grace: 5s
                workloads:
                  - name: reviewer
                    spiffeId: %s
                    keys: [openai]
                """.formatted(READER));
        int port = io.keywarden.tests.support.Ports.free();
        RunConfig.vaultFuse(work, "{provider: spire, audience: vault, spire: {adminSocket: " + adminSocket + "}}", baoAddress,
                "10s", mnt, port, work.resolve("kw-admin/admin.sock"));
        String api = mnt.resolve("openai/api_key").toString();
        try (Daemon d = Daemon.start(Map.of(), "run", "--config", work.resolve("config.yaml").toString())) {
            d.awaitOut("serving KeyFS", 60);
            // The agent syncs its entries every few seconds: the first reads may be refused.
            String[] first = new String[1];
            Await.until(Duration.ofSeconds(60), () -> {
                Proc.Result r = Proc.as(1001, "cat", api);
                first[0] = r.ok() ? r.out() : null;
                return first[0] != null;
            }, () -> "uid 1001 never got a key; status: " + Proc.run("cat", mnt.resolve("openai/status").toString()).out()
                    + "\nkeywarden: " + d.err + "\nSPIRE agent: " + agentLog.get());
            String key1 = first[0];
            assertTrue(key1.startsWith("sk-svcacct-stub-"), "the key the engine got from the stub, fingerprint "
                    + IssuedKey.fingerprint(key1));
            assertEquals(200, me(stubAddress, key1), "the key is live at the provider");
            assertTrue(Proc.as(1002, "cat", api).err().contains("Permission denied"), "SPIRE has no identity for uid 1002");

            String[] next = new String[1];
            Await.until(Duration.ofSeconds(45), () -> {
                Proc.Result r = Proc.as(1001, "cat", api);
                next[0] = r.ok() ? r.out() : null;
                return next[0] != null && !next[0].equals(key1);
            }, () -> "no refreshed key within 45 s of a 40 s lease");
            String key2 = next[0];
            assertNotEquals(key1, key2);
            assertEquals(200, me(stubAddress, key2));
            Await.until(Duration.ofSeconds(30), () -> me(stubAddress, key1) == 401,
                    () -> "the old lease was not revoked at OpenBao (its key still works)");

            assertEquals(0, d.stop(), "SIGTERM is a requested stop: exit 0");
            // OpenBao queues a revocation; the engine then deletes the service account.
            Await.until(Duration.ofSeconds(20), () -> me(stubAddress, key2) == 401,
                    () -> "shutdown did not revoke the last lease (its key still works)");
            assertTrue(Mounts.at(mnt).isEmpty());
            String ledger = Files.readString(work.resolve("audit.jsonl"));
            assertTrue(ledger.contains("\"key.issued\"") && ledger.contains("\"key.revoked\"") && ledger.contains(READER));
            String everything = ledger + String.join("\n", d.out) + String.join("\n", d.err);
            assertFalse(everything.contains(key1) || everything.contains(key2) || everything.contains("eyJ")
                    || everything.contains(ROOT_TOKEN), "no key, JWT or token in the ledger or the daemon's output");
        }
    }

    static GenericContainer<?> spire(String image, Network net) {
        String name = switch (image) {
            case "spire-server" -> "SPIRE_SERVER_IMAGE";
            case "spire-agent" -> "SPIRE_AGENT_IMAGE";
            default -> "OIDC_IMAGE";
        };
        GenericContainer<?> c = new GenericContainer<>(Images.get(name, "ghcr.io/spiffe/" + image + ":" + SPIRE))
                .withNetwork(net);
        return image.equals("spire-server") ? c.withNetworkAliases("spire-server") : c;
    }

    /**
     * {@code c} with {@code port} published on the host's loopback only (a random port): nothing
     * the test starts is reachable from beyond this host.
     */
    static GenericContainer<?> loopbackOnly(GenericContainer<?> c, int port) {
        return c.withExposedPorts(port).withCreateContainerCmdModifier(cmd -> cmd.getHostConfig().withPortBindings(
                new com.github.dockerjava.api.model.PortBinding(com.github.dockerjava.api.model.Ports.Binding.bindIp(
                        "127.0.0.1"), com.github.dockerjava.api.model.ExposedPort.tcp(port))));
    }

    static GenericContainer<?> openBao(Network net) {
        String prebuilt = System.getProperty("keywarden.it.openbaoImage", Images.get("OPENBAO_OPENAI_IMAGE", ""));
        GenericContainer<?> c = prebuilt.isBlank()
                ? new GenericContainer<>(new ImageFromDockerfile("keywarden/openbao-openai-it", false)
                        .withFileFromPath(".", DEPLOY.resolve("openbao")).withTarget("openbao"))
                : new GenericContainer<>(prebuilt);
        return loopbackOnly(c, 8200).withNetwork(net).withNetworkAliases("openbao")
                .withEnv("BAO_DEV_ROOT_TOKEN_ID", ROOT_TOKEN).withEnv("BAO_DEV_LISTEN_ADDRESS", "0.0.0.0:8200")
                .withEnv("SKIP_SETCAP", "true")
                .withCreateContainerCmdModifier(cmd -> cmd.getHostConfig().withCapAdd(Capability.IPC_LOCK))
                .withCopyFileToContainer(MountableFile.forHostPath(DEPLOY.resolve("openbao/setup.sh"), 0755), "/setup/setup.sh")
                .waitingFor(Wait.forHttp("/v1/sys/health").forPort(8200).withStartupTimeout(Duration.ofMinutes(5)));
    }

    /**
     * A host directory for a socket the containers share, owned by the uid the SPIRE server and OIDC
     * provider images run as (1000), so that whatever they do to it is theirs to do.
     */
    static Path shared(Path dir) throws Exception {
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxr-x"));
        Proc.Result r = Proc.run("chown", "1000:1000", dir.toString());
        assertTrue(r.ok(), r.err());
        return dir;
    }

    static String exec(GenericContainer<?> c, String... cmd) throws Exception {
        ExecResult r = c.execInContainer(cmd);
        assertEquals(0, r.getExitCode(), String.join(" ", cmd) + ": " + r.getStderr());
        return r.getStdout();
    }

    static void awaitExec(GenericContainer<?> c, Duration max, String... cmd) throws Exception {
        Await.until(max, () -> c.execInContainer(cmd).getExitCode() == 0,
                () -> String.join(" ", cmd) + " never succeeded; log:\n" + c.getLogs());
    }

    static int me(String stub, String key) {
        try {
            return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(stub + "/v1/me"))
                    .header("Authorization", "Bearer " + key).build(), HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (Exception e) {
            throw new AssertionError("the OpenAI stub did not answer: " + e.getClass().getSimpleName());
        }
    }
}
