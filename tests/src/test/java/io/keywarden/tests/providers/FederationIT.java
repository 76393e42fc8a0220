package io.keywarden.tests.providers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.tests.support.Http;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Keyless: `keywarden run` with the dev identity exchanges each workload's JWT-SVID at three
 * provider stubs (OpenAI token exchange, Anthropic jwt-bearer, Google STS with impersonation),
 * and serves each credential only to processes of that workload, in one mount. The stubs verify
 * the SVIDs against keywarden's JWKS as the providers do; tokens are refreshed before they expire,
 * Anthropic never sees an assertion twice, and the ledger says the credentials are not revocable.
 */
class FederationIT {
    private static final String ALICE = "spiffe://example.org/ns/agents/sa/alice";
    private static final String BOB = "spiffe://example.org/ns/agents/sa/bob";

    private static double metric(String text, String series) {
        return text.lines().filter(l -> l.startsWith(series + " ")).mapToDouble(l -> Double.parseDouble(
                l.substring(series.length() + 1).trim())).findFirst().orElse(Double.NaN);
    }

    @Test
    void everyProviderOneMountEachProcessItsOwnCredential() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-fed-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        int port = io.keywarden.tests.support.Ports.free();
        String ops = "http://127.0.0.1:" + port;
        Proc.Result made = Daemon.cli("jwks", "--generate", dir.resolve("okta-signing.jwk").toString());
        assertEquals(0, made.code(), made.err());
        try (FakeProviders p = new FakeProviders(() -> Http.get(ops + "/.well-known/jwks.json"), ops)
                .openAiServiceAccount("svc_alice", ALICE).openAiServiceAccount("svc_bob", BOB)
                .anthropicRule("fdrl_alice", ALICE).anthropicRule("fdrl_bob", BOB)
                .gcpImpersonation("alice@proj.iam.gserviceaccount.com", ALICE)
                .gcpImpersonation("bob@proj.iam.gserviceaccount.com", BOB)
                .azureFederatedCredential("app-alice", ALICE).azureFederatedCredential("app-bob", BOB)
                .awsRole("arn:aws:iam::123456789012:role/agents-alice", ALICE)
                .awsRole("arn:aws:iam::123456789012:role/agents-bob", BOB)
                .openRouterPolicy("fp_alice", ALICE).openRouterPolicy("fp_bob", BOB)
                .oktaApp("0oa-alice", () -> Http.get(ops + "/.well-known/keywarden-client-jwks.json"))
                .oktaApp("0oa-bob", () -> Http.get(ops + "/.well-known/keywarden-client-jwks.json")).start()) {
            p.expiresIn = 20;
            Path mnt = dir.resolve("mnt");
            Files.writeString(dir.resolve("policy.yaml"), """
                    keys:
                      openai:
                        issuer: oai
                        params: {serviceAccountId: "{workload.params.openaiSa}"}
                        refreshAt: 0.5
                        grace: 2s
                      claude:
                        issuer: claude
                        params: {federationRuleId: "{workload.params.rule}", serviceAccountId: "svac_{workload}"}
                        refreshAt: 0.5
                        grace: 2s
                      vertex:
                        issuer: gcp
                        params: {serviceAccount: "{workload}@proj.iam.gserviceaccount.com"}
                      azure:
                        issuer: entra
                        params: {clientId: "app-{workload}"}
                      bedrock:
                        issuer: aws
                        params: {roleArn: "arn:aws:iam::123456789012:role/agents-{workload}"}
                      gateway:
                        issuer: okta
                        params: {clientId: "0oa-{workload}"}
                      orfed:
                        issuer: orfed
                        params: {federationPolicyId: "fp_{workload}"}
                      openrouter:
                        issuer: orouter
                        params: {limit: "2.50", limitReset: daily}
                    workloads:
                      - name: alice
                        spiffeId: %s
                        selectors: [unix:uid:1001]
                        keys: [openai, claude, vertex, azure, bedrock, gateway, orfed, openrouter]
                        params: {openaiSa: svc_alice, rule: fdrl_alice}
                      - name: bob
                        spiffeId: %s
                        selectors: [unix:uid:1002]
                        keys: [openai, claude, vertex, azure, bedrock, gateway, orfed, openrouter]
                        params: {openaiSa: svc_bob, rule: fdrl_bob}
                    """.formatted(ALICE, BOB));
            Path config = Files.writeString(dir.resolve("config.yaml"), """
                    node: it-node
                    policy: policy.yaml
                    identity: {provider: dev, audience: vault}
                    issuers:
                      oai: {type: openai-federation, url: "%s", identityProviderId: %s}
                      claude: {type: anthropic-federation, url: "%s", organizationId: %s}
                      gcp: {type: gcp-sts, url: "%s", audience: "%s", impersonateUrl: "%s"}
                      entra: {type: azure-entra, url: "%s"}
                      orouter: {type: openrouter-keys, url: "%s", managementKeyFile: openrouter.key, ttl: 10m}
                      aws: {type: aws-sts, url: "%s", region: us-east-1, duration: 15m}
                      orfed: {type: openrouter-federation, url: "%s"}
                      okta: {type: okta-client-credentials, url: "%s", scope: "llm:infer", signingKeyFile: okta-signing.jwk}
                    delivery: {mode: fuse, path: %s}
                    audit: {file: audit.jsonl}
                    ops: {listen: "127.0.0.1:%d"}
                    admin: {socket: %s}
                    """.formatted(p.url("/openai/oauth/token"), FakeProviders.OPENAI_IDP, p.url("/anthropic/v1/oauth/token"),
                    FakeProviders.ANTHROPIC_ORG, p.url("/gcp/v1/token"), FakeProviders.GCP_PROVIDER, p.url("/gcp-iam"),
                    p.url("/azure/oauth2/v2.0/token"), p.url("/openrouter/api/v1"), p.url("/aws/"), p.url("/openrouter/api/v1/oauth/token"), p.url("/okta/oauth2/default/v1/token"), mnt, port,
                    dir.resolve("admin/admin.sock")));
            Files.writeString(dir.resolve("openrouter.key"), p.openRouterManagementKey + "\n");
            Files.setPosixFilePermissions(dir.resolve("openrouter.key"), PosixFilePermissions.fromString("rw-------"));
            Proc.Result check = Daemon.cli("policy", "check", "--config", config.toString(),
                    dir.resolve("policy.yaml").toString());
            assertEquals(0, check.code(), check.err());
            try (Daemon d = Daemon.start(Map.of(), "run", "--config", config.toString())) {
                d.awaitOut("serving KeyFS", 30);
                for (String[] who : List.of(new String[] {"1001", ALICE}, new String[] {"1002", BOB})) {
                    int uid = Integer.parseInt(who[0]);
                    long t0 = System.nanoTime();
                    String oai = Proc.as(uid, "cat", mnt.resolve("openai/api_key").toString()).out();
                    long t1 = System.nanoTime();
                    String claude = Proc.as(uid, "cat", mnt.resolve("claude/api_key").toString()).out();
                    long t2 = System.nanoTime();
                    String vertex = Proc.as(uid, "cat", mnt.resolve("vertex/api_key").toString()).out();
                    long t3 = System.nanoTime();
                    System.out.printf("cold first credential for uid %d (a process started, SVID signed, exchanged,"
                            + " served): openai %.1f ms, anthropic %.1f ms, google (STS + impersonation) %.1f ms%n", uid,
                            (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6);
                    assertEquals(p.tokensOf("openai", who[1]), List.of(oai), "the OpenAI token minted for " + who[1]);
                    assertEquals(p.tokensOf("anthropic", who[1]), List.of(claude), "the Anthropic token for " + who[1]);
                    assertEquals(p.tokensOf("google", who[1]), List.of(vertex), "the impersonated Google token for "
                            + who[1]);
                    assertTrue(claude.startsWith("sk-ant-oat01-") && vertex.startsWith("ya29.sa-"));
                    assertEquals("anthropic-beta: oauth-2025-04-20\n", Proc.as(uid, "cat",
                            mnt.resolve("claude/headers").toString()).out(), "what the agent must send with the token");
                    assertEquals("", Proc.as(uid, "cat", mnt.resolve("openai/headers").toString()).out());
                    assertEquals("ok (revocable: false)\n", Proc.as(uid, "cat", mnt.resolve("openai/status").toString()).out(),
                            "a federated token says it cannot be revoked early");
                    assertEquals("ok\n", Proc.as(uid, "cat", mnt.resolve("openrouter/status").toString()).out());
                    String azure = Proc.as(uid, "cat", mnt.resolve("azure/api_key").toString()).out();
                    assertEquals(p.tokensOf("azure", who[1]), List.of(azure), "Entra's token for " + who[1]
                            + " (RS256 assertion)");
                    String bedrock = Proc.as(uid, "cat", mnt.resolve("bedrock/api_key").toString()).out();
                    assertEquals(who[1], p.bedrockKeySubject(bedrock), "a Bedrock API key that verifies for " + who[1]);
                    String orfed = Proc.as(uid, "cat", mnt.resolve("orfed/api_key").toString()).out();
                    assertEquals(p.tokensOf("openrouter-federation", who[1]), List.of(orfed), "OpenRouter's token for "
                            + who[1]);
                    String okta = Proc.as(uid, "cat", mnt.resolve("gateway/api_key").toString()).out();
                    assertEquals(p.tokensOf("okta", uid == 1001 ? "0oa-alice" : "0oa-bob"), List.of(okta),
                            "the Okta token of the workload's own service app");
                    String or = Proc.as(uid, "cat", mnt.resolve("openrouter/api_key").toString()).out();
                    Map<String, Object> orKey = p.openRouterKey(or);
                    assertTrue(orKey != null && or.startsWith("sk-or-v1-"), "a live OpenRouter key");
                    assertEquals(0, new java.math.BigDecimal("2.50").compareTo((java.math.BigDecimal) orKey.get("limit")), "with its spend cap");
                    assertTrue(((String) orKey.get("name")).startsWith("keywarden " + (uid == 1001 ? "alice" : "bob")
                            + "/openrouter "), (String) orKey.get("name"));
                }
                assertTrue(Proc.as(1003, "cat", mnt.resolve("openai/api_key").toString()).err()
                        .contains("Permission denied"), "a process of no workload gets nothing");
                assertEquals(List.of(), p.refusals, "every exchange verified at the stubs");

                // 20 s tokens, refreshed at half: new tokens, a fresh Anthropic assertion each time.
                String first = Proc.as(1001, "cat", mnt.resolve("claude/api_key").toString()).out();
                io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(30),
                        () -> p.tokensOf("anthropic", ALICE).size() >= 2, () -> "no refresh of the Anthropic token");
                String second = Proc.as(1001, "cat", mnt.resolve("claude/api_key").toString()).out();
                assertNotEquals(first, second, "refreshed before expiry");
                assertTrue(p.tokensOf("anthropic", ALICE).size() >= 2, "a new token per refresh");
                assertEquals(List.of(), p.refusals, "no assertion presented twice, none refused");
                String metrics = Http.get(ops + "/metrics");
                for (String i : List.of("oai", "claude", "gcp", "entra", "aws", "okta", "orfed", "orouter")) {
                    double sum = metric(metrics, "keywarden_issuer_request_seconds_sum{issuer=\"" + i + "\",op=\"issue\"}");
                    double n = metric(metrics, "keywarden_issuer_request_seconds_count{issuer=\"" + i + "\",op=\"issue\"}");
                    System.out.printf("issuer %s: %d exchanges, mean %.1f ms (keywarden_issuer_request_seconds)%n", i,
                            (long) n, sum / n * 1000);
                }
                for (String i : List.of("oai", "claude", "gcp")) {
                    assertTrue(metrics.contains("keywarden_issuer_request_seconds_count{issuer=\"" + i + "\",op=\"issue\"}"),
                            metrics);
                }
                assertTrue(metrics.contains("keywarden_keys_issued_total{issuer=\"claude\",key=\"claude\",outcome=\"ok\"} 2.0"),
                        "issuances counted per issuer instance: " + metrics);
                assertEquals(0, d.stop());
            }
            assertEquals(java.util.Map.of(), p.openRouterKeys, "every OpenRouter key was deleted (revocable)");
            assertEquals(2, p.openRouterDeleted.size());
            String ledger = Files.readString(dir.resolve("audit.jsonl"));
            assertTrue(ledger.lines().anyMatch(l -> l.contains("\"event\":\"key.issued\"") && l.contains("\"issuer\":\"claude\"")
                    && l.contains("\"revocable\":false")), ledger);
            assertTrue(ledger.lines().anyMatch(l -> l.contains("\"event\":\"key.revoked\"") && l.contains("\"revocable\":false")),
                    "withdrawn at shutdown, and said not to be revocable at the provider");
            synchronized (p.minted) {
                for (FakeProviders.Minted m : p.minted) {
                    assertFalse(ledger.contains(m.token()), "no token in the ledger");
                }
            }
        } finally {
            Proc.run("sh", "-c", "grep -q '" + dir + "/mnt' /proc/mounts && umount -l '" + dir + "/mnt'; rm -rf '" + dir + "'");
        }
    }
}
