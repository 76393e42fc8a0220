package io.keywarden.tests.run;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.linux.Mounts;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.RunConfig;
import io.keywarden.tests.vault.FakeVault;
import java.net.ServerSocket;
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

/** /readyz tells the truth: not ready while the issuer cannot serve anyone, ready once it can. */
class ReadinessIT {

    static HttpResponse<String> readyz(int port) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/readyz"))
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void anUnreachableVaultIsNotReadyAndAReachableOneIs() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-ready-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mnt = dir.resolve("mnt");
        int port = io.keywarden.tests.support.Ports.free();
        int closed;
        try (ServerSocket s = new ServerSocket(0)) {
            closed = s.getLocalPort();
        }
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai:
                    vault: {role: "{workload}", path: "openai/creds/{workload}"}
                workloads:
                  - {name: reviewer, spiffeId: "spiffe://example.org/r", selectors: [unix:uid:1001], keys: [openai]}
                """);
        try {
            RunConfig.vaultFuse(dir, "{provider: dev, audience: vault}", "http://127.0.0.1:" + closed, "2s", mnt, port,
                    dir.resolve("admin/admin.sock"));
            try (Daemon d = Daemon.start(Map.of(), "run", "--config", dir.resolve("config.yaml").toString())) {
                d.awaitOut("serving KeyFS", 30);
                HttpResponse<String> r = readyz(port);
                assertEquals(503, r.statusCode(), r.body());
                assertTrue(r.body().contains("issuer vault: vault at http://127.0.0.1:" + closed) && r.body().contains("connection refused"),
                        r.body());
                Proc.Result read = Proc.as(1001, "cat", mnt.resolve("openai/api_key").toString());
                assertTrue(read.err().contains("Input/output error"), "issuer down is EIO, not EACCES: " + read.err());
                assertEquals(0, d.stop());
            }
            try (FakeVault vault = new FakeVault(() -> "{\"keys\":[]}").start()) {
                RunConfig.vaultFuse(dir, "{provider: dev, audience: vault}", vault.address(), "2s", mnt, port,
                        dir.resolve("admin/admin.sock"));
                try (Daemon d = Daemon.start(Map.of(), "run", "--config", dir.resolve("config.yaml").toString())) {
                    d.awaitOut("serving KeyFS", 30);
                    Await.until(Duration.ofSeconds(5), () -> readyz(port).statusCode() == 200, () -> "never ready");
                    vault.failure = FakeVault.Failure.SEALED;
                    Await.until(Duration.ofSeconds(15), () -> readyz(port).body().contains("(sealed)"),
                            () -> "a sealed Vault never showed in /readyz");
                    assertEquals(0, d.stop());
                }
            }
        } finally {
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }
}
