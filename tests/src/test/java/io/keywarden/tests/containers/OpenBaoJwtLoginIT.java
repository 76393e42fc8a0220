package io.keywarden.tests.containers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.SelectorAttestor;
import io.keywarden.attestation.dev.DevIdentityProvider;
import io.keywarden.attestation.dev.JwtSigner;
import io.keywarden.daemon.config.Config;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.vault.VaultIssuer;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.testcontainers.containers.Container.ExecResult;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.containers.GenericContainer;

/**
 * Against a real OpenBao (Testcontainers; skipped where no Docker engine runs), in the host's
 * network namespace on a loopback port: JWT auth is
 * configured with keywarden's dev JWKS, a role is bound to the workload's SPIFFE ID and the
 * "vault" audience, and keywarden's Vault issuer logs in with its JWT-SVID. A role bound to
 * another subject is refused. The stock image has no OpenAI engine, so the read is expected to be
 * refused (no route): {@link SpireOpenBaoChainIT} runs the whole chain with the engine.
 */
@Testcontainers(disabledWithoutDocker = true)
class OpenBaoJwtLoginIT {
    /** OpenBao's image (a local one that build-images.sh made, when there is no registry). */
    static final String IMAGE = Images.get("OPENBAO_IMAGE", "quay.io/openbao/openbao:2.7.2");
    static final String POLICY = """
            keys:
              openai:
                vault: {role: "{workload}", path: "openai/creds/{workload}"}
            workloads:
              - {name: reviewer, spiffeId: "spiffe://example.org/reviewer", selectors: ["unix:uid:1001"], keys: [openai]}
              - {name: intruder, spiffeId: "spiffe://example.org/intruder", selectors: ["unix:uid:1002"], keys: [openai]}
            """;

    @Test
    void realOpenBaoAcceptsKeywardensJwtSvids() throws Exception {
        JwtSigner signer;
        // OpenBao runs in the host's network namespace and listens on loopback only, as the JWKS server
        // does: nothing this test starts is reachable from beyond this host.
        io.keywarden.testkit.HttpStub jwks = io.keywarden.testkit.HttpStub.start();
        String issuer = jwks.uri("").toString();
        signer = new JwtSigner(issuer, List.of("vault"), Clock.systemUTC());
        JwtSigner s = signer;
        jwks.on("/.well-known/jwks.json", r -> io.keywarden.testkit.HttpStub.Answer.json(200, s.jwksJson()));
        int baoPort = io.keywarden.tests.support.Ports.free();
        String address = "http://127.0.0.1:" + baoPort;
        try (GenericContainer<?> bao = new GenericContainer<>(IMAGE).withNetworkMode("host")
                .withEnv("BAO_DEV_ROOT_TOKEN_ID", "dev-only-root").withEnv("BAO_DEV_LISTEN_ADDRESS", "127.0.0.1:" + baoPort)
                .withEnv("BAO_ADDR", address).withEnv("BAO_TOKEN", "dev-only-root").withEnv("SKIP_SETCAP", "true")
                .withCommand("server", "-dev")
                .waitingFor(new org.testcontainers.containers.wait.strategy.AbstractWaitStrategy() {
                    @Override
                    protected void waitUntilReady() {
                        try {
                            io.keywarden.testkit.Await.until(startupTimeout, () -> health(address) == 200,
                                    () -> "OpenBao did not answer at " + address);
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                            throw new IllegalStateException(e);
                        }
                    }
                }.withStartupTimeout(Duration.ofMinutes(2)))) {
            bao.start();
            exec(bao, "bao", "auth", "enable", "jwt");
            exec(bao, "bao", "write", "auth/jwt/config", "jwks_url=" + issuer + "/.well-known/jwks.json", "bound_issuer=" + issuer);
            exec(bao, "bao", "write", "auth/jwt/role/reviewer", "role_type=jwt", "user_claim=sub", "bound_audiences=vault",
                    "bound_subject=spiffe://example.org/reviewer", "token_ttl=10m");
            exec(bao, "bao", "write", "auth/jwt/role/intruder", "role_type=jwt", "user_claim=sub", "bound_audiences=vault",
                    "bound_subject=spiffe://example.org/someone-else", "token_ttl=10m");

            Policy policy = PolicyLoader.parse(POLICY, "p.yaml");
            io.keywarden.issuer.vault.VaultConnection cfg = new io.keywarden.issuer.vault.VaultConnection(URI.create(address), "", "jwt", Optional.empty(),
                    Duration.ofSeconds(10));
            VaultIssuer vault = new VaultIssuer(cfg, new DevIdentityProvider(new SelectorAttestor(ProcAttestor.system(),
                    () -> policy), signer, Clock.systemUTC()), Clock.systemUTC());

            IssuerException read = assertThrows(IssuerException.class,
                    () -> vault.issue(policy.workload("reviewer").orElseThrow(), policy.keys().get("openai"), null));
            assertTrue(read.getMessage().startsWith("vault read of openai/creds/reviewer failed"),
                    "the login was accepted; the read fails only because the OpenAI engine is not mounted: " + read.getMessage());

            IssuerException login = assertThrows(IssuerException.class,
                    () -> vault.issue(policy.workload("intruder").orElseThrow(), policy.keys().get("openai"), null));
            assertTrue(login.getMessage().startsWith("vault login to auth/jwt with role intruder failed: HTTP 400"),
                    login.getMessage());
            assertFalse(login.getMessage().contains("eyJ"));
        } finally {
            jwks.close();
        }
    }

    static int health(String address) {
        try {
            return java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(URI.create(address
                    + "/v1/sys/health")).build(), java.net.http.HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (java.io.IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    static void exec(GenericContainer<?> c, String... cmd) throws Exception {
        ExecResult r = c.execInContainer(cmd);
        assertEquals(0, r.getExitCode(), String.join(" ", cmd) + ": " + r.getStderr());
    }
}
