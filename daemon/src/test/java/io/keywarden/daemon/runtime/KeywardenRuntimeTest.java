package io.keywarden.daemon.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.net.HostPort;
import io.keywarden.issuer.dev.DevType;
import io.keywarden.linux.LibC;
import io.keywarden.linux.Mounts;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.testkit.Await;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The runtime's assembly in one process: a dev identity, a dev issuer and tmpfs delivery started
 * from a {@link Spec}; the key issued and published, the ops endpoint ready; then a stop that
 * unwinds in reverse — the lease revoked and recorded before the ledger's last record, the
 * delivery directory unmounted, the admin socket gone.
 */
class KeywardenRuntimeTest {
    @TempDir
    Path dir;
    private KeywardenRuntime rt;

    @AfterEach
    void tearDown() throws Exception {
        if (rt != null) {
            rt.close();
        }
        if (Mounts.at(dir.resolve("keys")).isPresent()) {
            Mounts.detach(dir.resolve("keys"));
        }
    }

    @Test
    void assemblesServesAndStopsInReverse() throws Exception {
        int uid = LibC.geteuid();
        boolean root = uid == 0;
        Policy policy = PolicyLoader.parse("""
                keys:
                  openai: {}
                workloads:
                  - name: me
                    spiffeId: spiffe://test.local/me
                    selectors: [unix:uid:%d]
                    keys: [openai]
                """.formatted(uid), "policy.yaml");
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Path keys = dir.resolve("keys");
        Path ledger = dir.resolve("audit.jsonl");
        Path admin = dir.resolve("admin.sock");
        Spec spec = new Spec("test", "n1", policy, Optional.empty(),
                new IdentitySettings(IdentitySettings.Provider.DEV, "vault", null),
                Map.of("dev", new DevType.Spec("dev", Duration.ofMinutes(10))),
                new Spec.DeliverySpec(DeliveryMode.TMPFS, keys, false, Optional.empty(), Duration.ofSeconds(30)),
                new Spec.AuditSpec(Optional.of(ledger), false, Ledger.Options.of(64L << 20, Duration.ofSeconds(1))),
                new HostPort("127.0.0.1", port), admin, dir.resolve("handover.sock"), true, Tuning.DEFAULT,
                Extensions.NONE);
        StringWriter banner = new StringWriter();
        rt = KeywardenRuntime.start(spec, new PrintWriter(banner, true));

        Path apiKey = (root ? keys.resolve("me") : keys).resolve("openai/api_key");
        Await.until(Duration.ofSeconds(30), () -> Files.exists(apiKey) && Files.size(apiKey) > 0,
                () -> "the key was not published at " + apiKey + "; banner: " + banner);
        assertTrue(Files.readString(apiKey).startsWith("sk-dev-"));
        HttpClient http = HttpClient.newHttpClient();
        Await.until(Duration.ofSeconds(30), () -> http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port
                + "/readyz")).build(), HttpResponse.BodyHandlers.ofString()).statusCode() == 200, () -> "never ready");
        assertTrue(Files.exists(admin), "the admin API listens");
        assertEquals(root, Mounts.at(keys).isPresent(), "tmpfs mounted when root, plain files otherwise");

        rt.close();
        rt = null;

        List<String> events = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(ledger)) {
            events.add(json.readTree(line).get("event").asText());
        }
        assertEquals(List.of("daemon.started", "policy.loaded"), events.subList(0, 2), events.toString());
        assertTrue(events.indexOf("key.issued") > 1, events.toString());
        assertTrue(events.indexOf("key.revoked") > events.indexOf("key.issued"), "revoked at the stop: " + events);
        assertEquals("daemon.stopped", events.get(events.size() - 1), "the ledger's last record: " + events);
        assertFalse(Mounts.at(keys).isPresent(), "unmounted");
        assertFalse(Files.exists(apiKey), "no key left behind");
        assertFalse(Files.exists(admin), "the admin socket removed");
    }
}
