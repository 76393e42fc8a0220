package io.keywarden.tests.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The OPA policy hook on gateway requests and on issuance: allow, deny, timeout (fail closed). */
class PolicyHookIT {
    @Test
    void opaAllowsDeniesAndATimeoutFailsClosed() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-opa-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mnt = dir.resolve("mnt");
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai: {}
                workloads:
                  - {name: reviewer, spiffeId: "spiffe://example.org/reviewer", selectors: ["unix:uid:1001"], keys: [openai]}
                  - {name: slowpoke, spiffeId: "spiffe://example.org/slowpoke", selectors: ["unix:uid:1003"], keys: [openai]}
                  - {name: noissue, spiffeId: "spiffe://example.org/noissue", selectors: ["unix:uid:1004"], keys: [openai]}
                """);
        int gw = Ports.free();
        try (UpstreamStub upstream = new UpstreamStub(); OpaStub opa = new OpaStub()) {
            Files.writeString(dir.resolve("config.yaml"), """
                    policy: policy.yaml
                    issuers: {dev: {type: dev}}
                    gateway:
                      listen: 127.0.0.1:%d
                      upstreams: {openai: "http://127.0.0.1:%d"}
                    policyHook:
                      opa: {url: "%s", timeout: 2s, failClosed: true}
                    """.formatted(gw, upstream.port(), opa.url()));
            try (Daemon d = Daemon.start(Map.of(), "dev", "--mount", mnt.toString(), "--policy",
                    dir.resolve("policy.yaml").toString(), "--config", dir.resolve("config.yaml").toString(),
                    "--audit", dir.resolve("audit.jsonl").toString(), "--admin-socket", dir.resolve("admin.sock").toString(),
                    "--listen", "127.0.0.1:" + Ports.free())) {
                d.awaitOut("gateway:", 30);
                GatewayITHelper g = new GatewayITHelper(gw);
                assertEquals(200, GatewayIT.status(g.curl(1001, GatewayIT.CHAT)), "allowed by OPA");
                JsonNode in = opa.inputs.stream().filter(i -> "gateway".equals(i.path("action").asText())).findFirst()
                        .orElseThrow();
                assertEquals("spiffe://example.org/reviewer", in.path("spiffe_id").asText());
                assertEquals("openai", in.path("key").asText());
                assertEquals("gpt-4.1-mini", in.path("model").asText());
                assertEquals(1001, in.path("process").path("uid").asInt());
                assertTrue(in.path("process").path("exe").asText().endsWith("/curl"), in.toString());
                assertTrue(in.path("process").path("pid").asInt() > 1);

                int before = upstream.seen.size();
                Proc.Result denied = g.curl(1001, GatewayIT.CHAT.replace("gpt-4.1-mini", "gpt-4o-mini"));
                assertEquals(403, GatewayIT.status(denied), denied.out());
                assertTrue(denied.out().contains("denied by the policy hook"), denied.out());
                assertEquals(before, upstream.seen.size(), "nothing sent upstream");

                long t0 = System.nanoTime();
                Proc.Result slow = g.curl(1003, GatewayIT.CHAT);
                long ms = (System.nanoTime() - t0) / 1_000_000;
                assertEquals(403, GatewayIT.status(slow), slow.out());
                assertTrue(slow.out().contains("policy hook failed closed"), slow.out());
                // A timeout wide enough for a loaded runner's OPA answers (300 ms failed a clean clone
                // once); OPA never answers this one: answered at the timeout, with a wide margin.
                assertTrue(ms < 6500, "answered at the hook's 2 s timeout: " + ms + " ms");

                Proc.Result file = Proc.as(1004, "cat", mnt.resolve("openai/api_key").toString());
                assertTrue(file.err().contains("Input/output error"), "issuance refused by the hook: " + file.err());
                assertTrue(Proc.as(1004, "cat", mnt.resolve("openai/status").toString()).out()
                        .contains("denied by the policy hook"));
                assertEquals(0, d.stop());
            }
        } finally {
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    /** curl to a gateway port. */
    record GatewayITHelper(int port) {
        Proc.Result curl(int uid, String body) {
            return Proc.as(uid, "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
                    "--data-binary", body, "http://127.0.0.1:" + port + "/openai/v1/chat/completions");
        }
    }
}
