package io.keywarden.tests.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Proc;
import java.io.IOException;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Compose stack's OpenAI stub and the two example agents, run for real: the stub answers the
 * Admin API calls the OpenAI engine makes (in every response shape its releases parse) and accepts
 * only keys of live service accounts; the Python and Java agents use a live key, and after an HTTP
 * 401 read the key file again and succeed with the rotated key (the file is a FIFO that yields the
 * old key first, then the new one).
 */
class ExampleAgentsTest {
    static final Path DEPLOY = Path.of(System.getProperty("keywarden.repo", ".."), "deploy");
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newHttpClient();
    static Process stub;
    static String base;

    @BeforeAll
    static void startStub() throws Exception {
        assumeTrue(Proc.run("sh", "-c", "command -v python3").ok(), "needs python3 (apt-get install python3)");
        int port = freePort();
        stub = stub(port, Map.of("OPENAI_STUB_ADMIN_KEY", "sk-admin-test"));
        base = "http://127.0.0.1:" + port;
        Await.until(Duration.ofSeconds(20), () -> stub.isAlive() && get("/health", null).statusCode() == 200,
                () -> "the stub did not start" + (stub.isAlive() ? "" : " (it exited)"));
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** The stub on {@code port} with {@code env} added. */
    static Process stub(int port, Map<String, String> env) throws IOException {
        ProcessBuilder pb = new ProcessBuilder("python3", DEPLOY.resolve("compose/openai-stub/stub.py").toString());
        pb.environment().put("PORT", Integer.toString(port));
        pb.environment().putAll(env);
        return pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
    }

    @AfterAll
    static void stopStub() throws Exception {
        if (stub != null) {
            stub.destroy();
            stub.waitFor(10, TimeUnit.SECONDS);
        }
    }

    static HttpResponse<String> get(String path, String bearer) throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path));
        if (bearer != null) {
            b.header("Authorization", "Bearer " + bearer);
        }
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> send(String method, String path, String body, String bearer) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(URI.create(base + path)).header("Authorization", "Bearer " + bearer)
                .header("Content-Type", "application/json").header("OpenAI-Beta", "project-service-accounts=v1")
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    /** What the engine does on a creds read: a service account whose answer carries its key. */
    static JsonNode createAccount(String name) throws Exception {
        HttpResponse<String> r = send("POST", "/v1/organization/projects/proj_t/service_accounts",
                "{\"name\":\"" + name + "\"}", "sk-admin-test");
        assertEquals(200, r.statusCode(), r.body());
        return JSON.readTree(r.body());
    }

    @Test
    void aKeyDiesAtItsExpiryAndAnOrganisationsMaximumLifetimeIsEnforced() throws Exception {
        HttpResponse<String> r = send("POST", "/v1/organization/projects/proj_t/service_accounts",
                "{\"name\":\"vault-short\",\"expires_in_seconds\":1}", "sk-admin-test");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode a = JSON.readTree(r.body());
        String key = a.path("api_key").path("value").asText();
        assertTrue(a.path("api_key").path("expires_at").asLong() > 0, "the answer carries api_key.expires_at");
        io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10), () -> get("/v1/models", key).statusCode()
                == 401, () -> "the key outlived its expires_at");
        for (String bad : new String[] {"0", "-5", "\"60\"", "true", "1.5"}) {
            assertEquals(400, send("POST", "/v1/organization/projects/proj_t/service_accounts",
                    "{\"name\":\"x\",\"expires_in_seconds\":" + bad + "}", "sk-admin-test").statusCode(), bad);
        }
        // An organisation with a maximum key lifetime (a second stub): the field is required and bounded.
        int port = freePort();
        Process limited = stub(port, Map.of("OPENAI_STUB_MAX_KEY_LIFETIME", "3600"));
        String saved = base;
        try {
            base = "http://127.0.0.1:" + port;
            io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(20), () -> {
                try {
                    return get("/health", null).statusCode() == 200;
                } catch (IOException e) {
                    return false;
                }
            }, () -> "the second stub did not start");
            String path = "/v1/organization/projects/proj_t/service_accounts";
            HttpResponse<String> missing = send("POST", path, "{\"name\":\"x\"}", "sk-any");
            assertEquals(400, missing.statusCode());
            assertTrue(missing.body().contains("expires_in_seconds is required"), missing.body());
            assertEquals(400, send("POST", path, "{\"name\":\"x\",\"expires_in_seconds\":3601}", "sk-any").statusCode());
            assertEquals(200, send("POST", path, "{\"name\":\"x\",\"expires_in_seconds\":3600}", "sk-any").statusCode());
        } finally {
            base = saved;
            limited.destroy();
            limited.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void stubBehavesLikeTheAdminApiAndKillsKeysWithTheirServiceAccount() throws Exception {
        assertEquals(200, get("/v1/organization/projects/proj_t", "sk-admin-test").statusCode());
        assertEquals("active", JSON.readTree(get("/v1/organization/projects/proj_t", "sk-admin-test").body())
                .path("status").asText());
        assertEquals(401, get("/v1/organization/projects/proj_t", "sk-wrong").statusCode(), "the admin key is checked");

        JsonNode a = createAccount("vault-reviewer-1");
        String id = a.path("id").asText();
        String key = a.path("api_key").path("value").asText();
        assertTrue(id.startsWith("svc_acct_") && key.startsWith("sk-svcacct-stub-"));
        assertTrue(a.path("api_key").path("id").asText().startsWith("key_"));
        java.util.Set<String> top = new java.util.TreeSet<>();
        a.fieldNames().forEachRemaining(top::add);
        assertEquals(java.util.Set.of("object", "id", "name", "role", "created_at", "api_key"), top,
                "only the documented fields: no shape a client could wrongly depend on");
        java.util.Set<String> inKey = new java.util.TreeSet<>();
        a.path("api_key").fieldNames().forEachRemaining(inKey::add);
        inKey.remove("expires_at");
        assertEquals(java.util.Set.of("object", "value", "name", "created_at", "id"), inKey);

        assertEquals(200, get("/v1/models", key).statusCode());
        assertEquals(200, get("/v1/organization/projects/proj_t/service_accounts/" + id, "sk-admin-test").statusCode());
        assertEquals(404, get("/v1/organization/projects/other/service_accounts/" + id, "sk-admin-test").statusCode());
        assertEquals(400, send("POST", "/v1/organization/projects/proj_t/service_accounts", "{}", "sk-admin-test").statusCode());
        assertEquals(400, send("POST", "/v1/organization/projects/proj_t/service_accounts", "{not json", "sk-admin-test")
                .statusCode());

        HttpResponse<String> del = send("DELETE", "/v1/organization/projects/proj_t/service_accounts/" + id, null, "sk-admin-test");
        assertEquals(200, del.statusCode());
        assertTrue(JSON.readTree(del.body()).path("deleted").asBoolean());
        assertEquals(401, get("/v1/models", key).statusCode(), "deleting the service account killed its key");
        assertEquals(401, get("/v1/me", key).statusCode());
        assertEquals(404, send("DELETE", "/v1/organization/projects/proj_t/service_accounts/" + id, null, "sk-admin-test")
                .statusCode());

        // The test controls: injected deletion failures, then a deletion behind the owner's back.
        JsonNode b = createAccount("vault-reviewer-2");
        String path = "/v1/organization/projects/proj_t/service_accounts/" + b.path("id").asText();
        assertEquals(200, send("POST", "/stub/faults", "{\"deletes\":2,\"status\":503}", null).statusCode());
        assertEquals(503, send("DELETE", path, null, "sk-admin-test").statusCode());
        assertEquals(503, send("DELETE", path, null, "sk-admin-test").statusCode());
        assertEquals(200, get("/v1/models", b.path("api_key").path("value").asText()).statusCode(), "a failed delete kills nothing");
        assertEquals(200, send("POST", "/stub/forget", "{\"key_id\":\"" + b.path("api_key").path("id").asText() + "\"}", null)
                .statusCode());
        assertEquals(401, get("/v1/models", b.path("api_key").path("value").asText()).statusCode());
        assertEquals(404, send("DELETE", path, null, "sk-admin-test").statusCode(), "the third delete is real: gone");
    }

    static int apiCalls() throws Exception {
        return JSON.readTree(get("/health", null).body()).path("api_calls").asInt();
    }

    /**
     * A FIFO that hands out {@code first} to the first reader and {@code second} to the next. The
     * second writer opens only once the agent has called the API with the first key (so it has
     * closed the file): otherwise both keys could reach the first read.
     */
    static Thread rotatingKeyFile(Path fifo, String first, String second) throws Exception {
        assertTrue(Proc.run("mkfifo", fifo.toString()).ok());
        int before = apiCalls();
        Thread t = new Thread(() -> {
            try {
                try (OutputStream out = Files.newOutputStream(fifo)) {
                    out.write(first.getBytes(StandardCharsets.US_ASCII));
                }
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (apiCalls() == before && System.nanoTime() < end) {
                    Thread.sleep(20);
                }
                try (OutputStream out = Files.newOutputStream(fifo)) {
                    out.write(second.getBytes(StandardCharsets.US_ASCII));
                }
            } catch (Exception e) {
                // the agent went away; its result tells what happened
            }
        });
        t.setDaemon(true);
        t.start();
        return t;
    }

    Proc.Result python(Path keyFile) {
        return Proc.withEnv(Map.of("OPENAI_KEY_FILE", keyFile.toString(), "OPENAI_BASE_URL", base + "/v1",
                "AGENT_ITERATIONS", "1"), "python3", DEPLOY.resolve("kubernetes/example-agent/agent.py").toString());
    }

    Proc.Result java(Path keyFile) {
        return Proc.withEnv(Map.of("OPENAI_KEY_FILE", keyFile.toString(), "OPENAI_BASE_URL", base + "/v1"),
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                DEPLOY.resolve("examples/agents/java/KeyReader.java").toString());
    }

    @Test
    void agentsReadTheKeyPerRequestAndReReadItAfterA401() throws Exception {
        Path dir = Files.createTempDirectory("kw-agents-");
        try {
            String live = createAccount("agent-live").path("api_key").path("value").asText();
            JsonNode dead = createAccount("agent-dead");
            String deadKey = dead.path("api_key").path("value").asText();
            send("DELETE", "/v1/organization/projects/proj_t/service_accounts/" + dead.path("id").asText(), null, "sk-admin-test");

            Path file = dir.resolve("api_key");
            Files.writeString(file, live);
            Proc.Result py = python(file);
            assertEquals(0, py.code(), py.err());
            assertTrue(py.out().contains("1 models visible"), py.out());
            Proc.Result jv = java(file);
            assertEquals(0, jv.code(), jv.err());
            assertTrue(jv.out().contains("HTTP 200"), jv.out());

            for (String lang : new String[] {"python", "java"}) {
                Path fifo = dir.resolve("rotating-" + lang);
                Thread feeder = rotatingKeyFile(fifo, deadKey, live);
                Proc.Result r = lang.equals("python") ? python(fifo) : java(fifo);
                feeder.join(5000);
                assertEquals(0, r.code(), lang + ": " + r.out() + r.err());
                assertTrue(r.out().contains("key " + IssuedKey.fingerprint(deadKey) + " refused (rotated?); reading the file again"),
                        lang + ": " + r.out());
                assertTrue(r.out().contains(lang.equals("python") ? "1 models visible" : "HTTP 200"), lang + ": " + r.out());
                assertFalse(r.out().contains(deadKey) || r.out().contains(live), "agents never print keys");
            }

            Path none = dir.resolve("missing/api_key");
            Proc.Result pyNone = python(none);
            assertTrue(pyNone.out().contains("no key: No such file or directory; keywarden says: no status"), pyNone.out());
            Proc.Result jvNone = java(none);
            assertEquals(1, jvNone.code());
            assertTrue(jvNone.out().contains("keywarden says: no status"), jvNone.out());
        } finally {
            Proc.run("rm", "-rf", dir.toString());
        }
    }
}
