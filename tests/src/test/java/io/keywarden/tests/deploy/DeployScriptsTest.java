package io.keywarden.tests.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.tests.support.Proc;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The deploy scripts run for real here, against stand-ins for the spire-server and bao CLIs
 * (test/resources/fakes) that record their calls and keep the state the scripts' idempotency
 * depends on: the Compose bootstrap end to end, OpenBao setup, SPIRE registration, agent config.
 */
class DeployScriptsTest {
    static final Path DEPLOY = Path.of(System.getProperty("keywarden.repo", ".."), "deploy");
    static final String SPIFFE = "spiffe://example.org/ns/agents/sa/example-agent";

    Path tmp;
    Path state;
    Map<String, String> env;

    @BeforeEach
    void fakes() throws Exception {
        tmp = Files.createTempDirectory("kw-scripts-");
        state = Files.createDirectory(tmp.resolve("state"));
        Path bin = Files.createDirectory(tmp.resolve("bin"));
        for (String f : List.of("bao", "spire-server")) {
            try (InputStream in = getClass().getResourceAsStream("/fakes/" + f)) {
                Files.copy(in, bin.resolve(f));
            }
            Files.setPosixFilePermissions(bin.resolve(f), PosixFilePermissions.fromString("rwxr-xr-x"));
        }
        env = new HashMap<>(Map.of("PATH", bin + ":" + System.getenv("PATH"), "FAKE_STATE", state.toString(),
                "RETRY_DELAY", "0"));
    }

    @AfterEach
    void clean() {
        Proc.run("rm", "-rf", tmp.toString());
    }

    Proc.Result sh(Map<String, String> more, String script, String... args) {
        Map<String, String> all = new HashMap<>(env);
        all.putAll(more);
        String[] cmd = new String[args.length + 2];
        cmd[0] = "sh";
        cmd[1] = DEPLOY.resolve(script).toString();
        System.arraycopy(args, 0, cmd, 2, args.length);
        return Proc.withEnv(all, cmd);
    }

    List<String> calls(String cli) throws Exception {
        Path f = state.resolve(cli + "-calls");
        return Files.exists(f) ? Files.readAllLines(f) : List.of();
    }

    Map<String, String> setupEnv() {
        return Map.of("OIDC_URL", "http://spire-oidc:8080", "OPENAI_ADMIN_KEY", "sk-admin-stub", "OPENAI_ORG_ID", "org-stub",
                "OPENAI_PROJECT_ID", "proj_stub", "OPENAI_API_URL", "http://openai-stub:8080/v1");
    }

    @Test
    void composeBootstrapWritesTheAgentConfigRegistersAndConfiguresOpenBaoOnceOnly() throws Exception {
        Path out = Files.createDirectory(tmp.resolve("out"));
        Path plugin = tmp.resolve("keywarden-openai-engine");
        Files.writeString(plugin, "not really a plugin");
        Map<String, String> boot = new HashMap<>(setupEnv());
        boot.putAll(Map.of("SPIRE_CONF_DIR", DEPLOY.resolve("spire").toString(), "OPENBAO_SETUP",
                DEPLOY.resolve("openbao/setup.sh").toString(), "BOOTSTRAP_OUT", out.toString(), "OPENAI_PLUGIN_FILE",
                plugin.toString(), "WORKLOADS", "example-agent=" + SPIFFE));
        Files.writeString(state.resolve("oidc-failures"), "2");

        Proc.Result first = sh(boot, "compose/bootstrap/bootstrap.sh");
        assertEquals(0, first.code(), first.out() + first.err());
        assertTrue(first.out().contains("bootstrap: done"));

        String conf = Files.readString(out.resolve("agent.conf"));
        List<String> lines = conf.lines().toList();
        int block = lines.indexOf("agent {");
        assertEquals("    join_token = \"7c1e4a4e-fake-join-token\"", lines.get(block + 1));
        assertEquals("    trust_bundle_path = \"" + out.resolve("bundle.pem") + "\"", lines.get(block + 2));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(out.resolve("agent.conf"))),
                "the join token is a secret");
        assertTrue(Files.readString(out.resolve("bundle.pem")).startsWith("-----BEGIN CERTIFICATE-----"));
        assertEquals(List.of("spiffe://example.org/keywarden", SPIFFE), Files.readAllLines(state.resolve("entries")));
        assertTrue(calls("spire").contains("entry create -socketPath /tmp/spire-server/private/api.sock -parentID "
                + "spiffe://example.org/node/compose -spiffeID spiffe://example.org/keywarden -selector docker:label:app:keywarden"));

        String sha = Proc.run("sha256sum", plugin.toString()).out().split(" ")[0];
        List<String> bao = calls("bao");
        assertTrue(bao.contains("plugin register -sha256=" + sha + " secret keywarden-openai-engine"), bao.toString());
        assertEquals(3, bao.stream().filter(c -> c.startsWith("write auth/jwt/config")).count(),
                "the OIDC config write is retried while the provider starts");
        assertTrue(bao.contains("write auth/jwt/role/example-agent role_type=jwt user_claim=sub bound_audiences=vault "
                + "bound_subject=" + SPIFFE + " token_policies=example-agent token_ttl=1h token_max_ttl=4h"), bao.toString());
        assertTrue(Files.readString(state.resolve("policies")).contains("path \"openai/creds/example-agent\""));

        Proc.Result again = sh(boot, "compose/bootstrap/bootstrap.sh");
        assertEquals(0, again.code(), again.out() + again.err());
        assertEquals(2, Files.readAllLines(state.resolve("entries")).size(), "entries are not created twice");
        List<String> all = calls("bao");
        assertEquals(1, all.stream().filter(c -> c.equals("auth enable jwt")).count());
        assertEquals(1, all.stream().filter(c -> c.startsWith("secrets enable")).count());
    }

    @Test
    void bootstrapStopsWithAReasonWhenTheSpireServerNeverComesUp() throws Exception {
        Files.writeString(state.resolve("spire-down"), "");
        Proc.Result r = sh(Map.of("WAIT_MAX", "2", "BOOTSTRAP_OUT", tmp.toString()), "compose/bootstrap/bootstrap.sh");
        assertEquals(1, r.code());
        assertTrue(r.err().contains("bootstrap: the SPIRE server did not become healthy"), r.err());
        assertFalse(Files.exists(tmp.resolve("agent.conf")));
    }

    @Test
    void setupConfiguresEveryWorkloadAndFailsClearlyWithoutTheOidcProvider() throws Exception {
        Map<String, String> e = new HashMap<>(setupEnv());
        e.put("WORKLOADS", "a=spiffe://example.org/a b=spiffe://example.org/b");
        e.put("KEY_TTL", "40s");
        Proc.Result ok = sh(e, "openbao/setup.sh");
        assertEquals(0, ok.code(), ok.err());
        List<String> bao = calls("bao");
        assertTrue(bao.contains("write openai/roles/a project_id=proj_stub ttl=40s max_ttl=24h key_expiry_margin=60s"), bao.toString());
        assertTrue(bao.contains("write openai/roles/b project_id=proj_stub ttl=40s max_ttl=24h key_expiry_margin=60s"));
        assertTrue(bao.stream().anyMatch(c -> c.startsWith("write auth/jwt/role/b ") && c.contains("bound_subject=spiffe://example.org/b")));
        assertFalse(bao.stream().anyMatch(c -> c.startsWith("plugin register")), "no checksum given: the plugin is not registered");
        assertTrue(bao.contains("write openai/config admin_api_key=sk-admin-stub organization_id=org-stub "
                + "api_endpoint=http://openai-stub:8080/v1"));
        assertFalse(ok.out().contains("sk-admin-stub"), "the admin key is not echoed");

        Files.writeString(state.resolve("oidc-failures"), "5");
        e.put("RETRIES", "3");
        Proc.Result bad = sh(e, "openbao/setup.sh");
        assertEquals(1, bad.code());
        assertTrue(bad.err().contains("setup: OpenBao could not use the OIDC discovery document at http://spire-oidc:8080"),
                bad.err());

        Map<String, String> missing = new HashMap<>(setupEnv());
        missing.remove("OPENAI_ORG_ID");
        Proc.Result noOrg = sh(missing, "openbao/setup.sh");
        assertTrue(noOrg.code() != 0 && noOrg.err().contains("OPENAI_ORG_ID"), noOrg.err());
    }

    @Test
    void setupConfiguresTheCommunityEngineWithItsPluginNameAndAdminKeyId() throws Exception {
        Map<String, String> e = new HashMap<>(setupEnv());
        e.put("WORKLOADS", "a=spiffe://example.org/a");
        e.put("OPENAI_ENGINE", "community");
        Proc.Result noId = sh(e, "openbao/setup.sh");
        assertEquals(2, noId.code());
        assertTrue(noId.err().contains("OPENAI_ENGINE=community needs OPENAI_ADMIN_KEY_ID"), noId.err());

        e.put("OPENAI_ADMIN_KEY_ID", "key_admin_1");
        e.put("OPENAI_PLUGIN_SHA256", "ab12");
        Proc.Result ok = sh(e, "openbao/setup.sh");
        assertEquals(0, ok.code(), ok.err());
        List<String> bao = calls("bao");
        assertTrue(bao.contains("plugin register -sha256=ab12 secret vault-plugin-secrets-openai"), bao.toString());
        assertTrue(bao.contains("write openai/config admin_api_key=sk-admin-stub admin_api_key_id=key_admin_1"
                + " organization_id=org-stub api_endpoint=http://openai-stub:8080/v1"), bao.toString());
        assertTrue(bao.contains("write openai/roles/a project_id=proj_stub ttl=15m max_ttl=24h"),
                "no field the community engine does not know: " + bao);

        e.put("OPENAI_ENGINE", "keywarden");
        e.put("MAX_KEY_LIFETIME", "48h");
        assertEquals(0, sh(e, "openbao/setup.sh").code());
        assertTrue(calls("bao").contains("write openai/roles/a project_id=proj_stub ttl=15m max_ttl=24h"
                + " key_expiry_margin=60s max_key_lifetime=48h"), calls("bao").toString());

        e.put("OPENAI_ENGINE", "other");
        Proc.Result bad = sh(e, "openbao/setup.sh");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("OPENAI_ENGINE must be keywarden or community"), bad.err());
    }

    @Test
    void registrationIsIdempotentPerModeAndRejectsUnknownModes() throws Exception {
        Map<String, String> e = Map.of("SPIRE_SERVER_BIN", "spire-server");
        assertEquals(0, sh(e, "spire/register.sh", "spiffe://example.org/node/n1", "k8s").code());
        assertTrue(calls("spire").contains("entry create -socketPath /tmp/spire-server/private/api.sock -parentID "
                + "spiffe://example.org/node/n1 -spiffeID " + SPIFFE + " -selector k8s:ns:agents -selector k8s:sa:example-agent"));
        Proc.Result again = sh(e, "spire/register.sh", "spiffe://example.org/node/n1", "k8s");
        assertTrue(again.out().contains("register: entry for " + SPIFFE + " exists"));
        assertEquals(2, Files.readAllLines(state.resolve("entries")).size());

        Proc.Result bad = sh(e, "spire/register.sh", "spiffe://example.org/node/n1", "nomad");
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("register: unknown mode 'nomad' (docker or k8s)"));
        assertTrue(sh(e, "spire/register.sh").err().contains("usage: register.sh PARENT_ID"));
    }

    @Test
    void agentConfigRefusesATemplateWithoutAnAgentBlock() throws Exception {
        Path bad = tmp.resolve("bad.conf");
        Files.writeString(bad, "plugins {\n}\n");
        Proc.Result r = sh(Map.of(), "spire/agent-conf.sh", bad.toString(), "t", "/b.pem", tmp.resolve("out.conf").toString());
        assertEquals(1, r.code());
        assertTrue(r.err().contains("agent-conf: no 'agent {' block in " + bad));
        assertFalse(Files.exists(tmp.resolve("out.conf")));
        String rendered = tmp.resolve("ok.conf").toString();
        assertEquals(0, sh(Map.of(), "spire/agent-conf.sh", DEPLOY.resolve("spire/agent.conf").toString(), "t", "/b.pem",
                rendered).code());
        String template = Files.readString(DEPLOY.resolve("spire/agent.conf"));
        String out = Files.readString(Path.of(rendered));
        assertEquals(template, out.replace("    join_token = \"t\"\n    trust_bundle_path = \"/b.pem\"\n", ""),
                "the template is kept as it is otherwise");
    }
}
