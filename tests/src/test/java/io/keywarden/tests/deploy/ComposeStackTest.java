package io.keywarden.tests.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.keywarden.daemon.config.Config;
import io.keywarden.daemon.config.ConfigLoader;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Compose stack cannot start here (no Docker engine), so its files are checked for what would
 * make it fail at `up`: every service has an image or a build whose context, Dockerfile and target
 * exist; every bind source exists; every named volume is declared; every dependency is a service;
 * and the values that must agree across files do (sockets, issuer, addresses, SPIFFE IDs, paths).
 */
class ComposeStackTest {
    static final Path DEPLOY = Path.of(System.getProperty("keywarden.repo", ".."), "deploy");
    static final Path COMPOSE = DEPLOY.resolve("compose");
    static JsonNode stack;
    static JsonNode services;

    @BeforeAll
    static void load() throws Exception {
        stack = new ObjectMapper(new YAMLFactory()).readTree(COMPOSE.resolve("docker-compose.yaml").toFile());
        services = stack.path("services");
    }

    /** `key = "value"` in an HCL file (the first one). */
    static String hcl(String file, String key) throws Exception {
        Matcher m = Pattern.compile("(?m)^\\s*" + Pattern.quote(key) + "\\s*=\\s*\"([^\"]*)\"").matcher(
                Files.readString(DEPLOY.resolve(file)));
        assertTrue(m.find(), key + " in " + file);
        return m.group(1);
    }

    /** A shell variable's default in a script: {@code name=${ENV:-default}}. */
    static String shDefault(String file, String var) throws Exception {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(var) + "=\\$\\{[A-Z_]+:-([^}]*)}").matcher(
                Files.readString(DEPLOY.resolve(file)));
        assertTrue(m.find(), var + " in " + file);
        return m.group(1);
    }

    /** target -> source of the service's mounts (short and long syntax). */
    static Map<String, String> mounts(String service) {
        Map<String, String> out = new HashMap<>();
        for (JsonNode v : services.path(service).path("volumes")) {
            if (v.isTextual()) {
                String[] p = v.asText().split(":");
                out.put(p[1], p[0]);
            } else {
                out.put(v.path("target").asText(), v.path("source").asText());
            }
        }
        return out;
    }

    static String env(String service, String name) {
        JsonNode v = services.path(service).path("environment").path(name);
        assertFalse(v.isMissingNode(), service + " sets " + name);
        return v.asText();
    }

    @Test
    void everyServiceCanBeBuiltOrPulledAndEveryReferenceResolves() throws Exception {
        assertEquals(Set.of("spire-server", "spire-oidc", "openai-stub", "openbao", "bootstrap", "spire-agent", "keywarden",
                "example-agent"), names(services));
        Set<String> declared = names(stack.path("volumes"));
        Set<String> used = new TreeSet<>();
        for (String name : iterable(services.fieldNames())) {
            JsonNode s = services.path(name);
            JsonNode build = s.path("build");
            if (build.isMissingNode()) {
                // ${VAR:-default}: a local stand-in may replace it (build-images.sh); the default is pinned.
                String image = s.path("image").asText().replaceAll("^\\$\\{[A-Z_]+:-(.*)}$", "$1");
                assertTrue(image.matches("[a-z0-9./-]+:[0-9][0-9.]*(-[a-z]+)?"), name + ": a pinned image: " + image);
            } else {
                Path ctx = COMPOSE.resolve(build.isTextual() ? build.asText() : build.path("context").asText()).normalize();
                Path dockerfile = ctx.resolve("Dockerfile");
                assertTrue(Files.isRegularFile(dockerfile), name + ": " + dockerfile);
                if (build.has("target")) {
                    assertTrue(Files.readString(dockerfile).contains(" AS " + build.path("target").asText() + "\n"),
                            name + ": target " + build.path("target").asText() + " in " + dockerfile);
                }
            }
            for (JsonNode v : s.path("volumes")) {
                String source = v.isTextual() ? v.asText().split(":")[0] : v.path("source").asText();
                if (source.startsWith(".")) {
                    assertTrue(Files.exists(COMPOSE.resolve(source)), name + ": bind source " + source);
                } else if (!source.startsWith("/")) {
                    used.add(source);
                }
            }
            for (String dep : iterable(s.path("depends_on").fieldNames())) {
                assertTrue(services.has(dep), name + " depends on unknown service " + dep);
                assertTrue(Set.of("service_started", "service_healthy", "service_completed_successfully")
                        .contains(s.path("depends_on").path(dep).path("condition").asText()), name + " -> " + dep);
                if (s.path("depends_on").path(dep).path("condition").asText().equals("service_healthy")) {
                    assertTrue(services.path(dep).has("healthcheck"), dep + " needs a healthcheck");
                }
            }
        }
        assertEquals(declared, used, "named volumes declared = named volumes used");
    }

    @Test
    void keywardenAndTheAgentGetFuseAndPropagationAndNothingMore() {
        JsonNode kw = services.path("keywarden");
        assertEquals("host", kw.path("pid").asText(), "the FUSE request pid must be a host pid, as the SPIRE agent's");
        assertEquals(List.of("SYS_ADMIN"), strings(kw.path("cap_add")));
        assertTrue(strings(kw.path("devices")).contains("/dev/fuse:/dev/fuse"));
        JsonNode kwMount = longMount("keywarden", "/run/keywarden");
        assertEquals("rshared", kwMount.path("bind").path("propagation").asText());
        assertEquals("keywarden", kw.path("labels").path("app").asText());

        JsonNode agent = services.path("example-agent");
        assertFalse(agent.path("user").asText("0").startsWith("0"), "the agent is not root");
        JsonNode agentMount = longMount("example-agent", "/run/keywarden");
        assertTrue(agentMount.path("read_only").asBoolean());
        assertEquals("rslave", agentMount.path("bind").path("propagation").asText());
        assertEquals(kwMount.path("source").asText(), agentMount.path("source").asText());
        assertEquals("example-agent", agent.path("labels").path("app").asText());
        assertEquals("host", services.path("spire-agent").path("pid").asText());
    }

    static JsonNode longMount(String service, String target) {
        for (JsonNode v : services.path(service).path("volumes")) {
            if (v.isObject() && v.path("target").asText().equals(target)) {
                return v;
            }
        }
        throw new AssertionError(service + " mounts nothing at " + target);
    }

    @Test
    void valuesThatMustAgreeAcrossFilesDo() throws Exception {
        // The server API socket: server config, OIDC provider, bootstrap and registration defaults, mounts.
        String socket = hcl("spire/server.conf", "socket_path");
        assertEquals("unix://" + socket, hcl("spire/oidc-discovery-provider.conf", "address"));
        assertEquals(socket, shDefault("compose/bootstrap/bootstrap.sh", "socket"));
        assertEquals(socket, shDefault("spire/register.sh", "socket"));
        String apiDir = Path.of(socket).getParent().toString();
        for (String s : List.of("spire-server", "spire-oidc", "bootstrap")) {
            assertEquals("spire-server-api", mounts(s).get(apiDir), s + " shares the server API socket directory");
        }
        assertTrue(hcl("spire/server.conf", "connection_string").startsWith(hcl("spire/server.conf", "data_dir")));
        assertEquals("spire-server-data", mounts("spire-server").get(hcl("spire/server.conf", "data_dir")));

        // The issuer: SPIRE's jwt_issuer is the URL OpenBao fetches the discovery document from.
        String issuer = hcl("spire/server.conf", "jwt_issuer");
        assertEquals(issuer, env("bootstrap", "OIDC_URL"));
        URI u = URI.create(issuer);
        assertTrue(services.has(u.getHost()), "the issuer host is the OIDC provider's service name");
        assertTrue(Files.readString(DEPLOY.resolve("spire/oidc-discovery-provider.conf")).contains("domains = [\"" + u.getHost() + "\"]"));
        assertEquals(":" + u.getPort(), hcl("spire/oidc-discovery-provider.conf", "insecure_addr"));

        // The agent reaches the server; its config is the one bootstrap writes.
        assertTrue(services.has(hcl("spire/agent.conf", "server_address")));
        assertEquals(hcl("spire/server.conf", "bind_port"), hcl("spire/agent.conf", "server_port"));
        String bootOut = shDefault("compose/bootstrap/bootstrap.sh", "out");
        assertEquals("spire-bootstrap", mounts("bootstrap").get(bootOut));
        assertEquals("spire-bootstrap", mounts("spire-agent").get(bootOut));
        assertEquals(List.of("-config", bootOut + "/agent.conf"), strings(services.path("spire-agent").path("command")));
        assertEquals("spire-agent-data", mounts("spire-agent").get(hcl("spire/agent.conf", "data_dir")));
        String spireDir = shDefault("compose/bootstrap/bootstrap.sh", "spire_dir");
        for (String f : List.of("agent.conf", "agent-conf.sh", "register.sh")) {
            assertEquals("../spire/" + f, mounts("bootstrap").get(spireDir + "/" + f));
        }
        assertEquals("../openbao/setup.sh", mounts("bootstrap").get(shDefault("compose/bootstrap/bootstrap.sh", "setup")));
        String dockerfile = Files.readString(DEPLOY.resolve("openbao/Dockerfile"));
        String plugin = shDefault("compose/bootstrap/bootstrap.sh", "plugin");
        assertTrue(dockerfile.contains(" " + plugin + "\n"), "the image puts the plugin where bootstrap hashes it");
        assertTrue(dockerfile.contains("-dev-plugin-dir=" + Path.of(plugin).getParent()));

        // The Delegated Identity API: socket shared by agent and keywarden; keywarden is the delegate.
        Config kw = ConfigLoader.load(COMPOSE.resolve("keywarden.yaml"), Map.of());
        String adminSocket = hcl("spire/agent.conf", "admin_socket_path");
        assertEquals(Path.of(adminSocket), kw.identity().spireAdminSocket());
        String adminDir = Path.of(adminSocket).getParent().toString();
        assertEquals("spire-admin", mounts("spire-agent").get(adminDir));
        assertEquals("spire-admin", mounts("keywarden").get(adminDir));
        assertFalse(Path.of(hcl("spire/agent.conf", "socket_path")).getParent().toString().equals(adminDir),
                "the admin socket may not live in the Workload API socket's directory");
        String delegates = Files.readString(DEPLOY.resolve("spire/agent.conf"));
        assertTrue(delegates.contains("authorized_delegates = [\"spiffe://example.org/keywarden\"]"));
        assertTrue(Files.readString(DEPLOY.resolve("spire/register.sh")).contains("entry \"spiffe://$td/keywarden\" docker:label:app:"
                + services.path("keywarden").path("labels").path("app").asText()));

        // keywarden's config and policy: files mounted where the config says, Vault is the openbao service.
        assertEquals("./keywarden.yaml", mounts("keywarden").get("/etc/keywarden/config.yaml"));
        assertEquals("./policy.yaml", mounts("keywarden").get(kw.policy().toString()));
        assertEquals("openbao", ((io.keywarden.issuer.vault.VaultType.Spec) kw.issuers().values().iterator().next())
                .connection().address().getHost());
        assertEquals("keywarden-ledger", mounts("keywarden").get(kw.audit().file().getParent().toString()));
        Policy policy = PolicyLoader.load(COMPOSE.resolve("policy.yaml"));
        List<String> workloads = new ArrayList<>();
        policy.workloads().forEach(w -> workloads.add(w.name() + "=" + w.spiffeId()));
        assertEquals(String.join(" ", workloads), env("bootstrap", "WORKLOADS"), "OpenBao roles for exactly the policy's workloads");
        assertTrue(Files.readString(DEPLOY.resolve("spire/register.sh")).contains("entry \"spiffe://$td/ns/agents/sa/example-agent\" "
                + "docker:label:app:" + services.path("example-agent").path("labels").path("app").asText()));
        assertNotNull(env("bootstrap", "OPENAI_ORG_ID"), "the engine requires an organization id");
    }

    static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    static Set<String> names(JsonNode object) {
        Set<String> out = new TreeSet<>();
        object.fieldNames().forEachRemaining(out::add);
        return out;
    }

    static <T> Iterable<T> iterable(java.util.Iterator<T> it) {
        return () -> it;
    }
}
