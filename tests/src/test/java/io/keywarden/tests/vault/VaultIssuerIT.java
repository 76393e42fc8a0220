package io.keywarden.tests.vault;

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
import io.keywarden.issuer.Lease;
import io.keywarden.issuer.vault.VaultIssuer;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.Workload;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The Vault issuer against the fake Vault, with JWT-SVIDs from the dev identity provider. */
class VaultIssuerIT {
    static final String POLICY = """
            keys:
              openai:
                vault: {role: "{workload}", path: "openai/creds/{workload}", ttl: 30s}
            workloads:
              - {name: reviewer, spiffeId: "spiffe://dev.keywarden.local/reviewer", selectors: ["unix:uid:1001"], keys: [openai]}
              - {name: intruder, spiffeId: "spiffe://dev.keywarden.local/intruder", selectors: ["unix:uid:1002"], keys: [openai]}
            """;

    JwtSigner signer;
    FakeVault vault;
    VaultIssuer issuer;
    Policy policy;
    Workload reviewer;

    @BeforeEach
    void start() throws Exception {
        policy = PolicyLoader.parse(POLICY, "p.yaml");
        reviewer = policy.workload("reviewer").orElseThrow();
        signer = new JwtSigner("http://127.0.0.1:9464", List.of("vault"), Clock.systemUTC());
        vault = new FakeVault(signer::jwksJson)
                .role("reviewer", "spiffe://dev.keywarden.local/reviewer", "vault", Duration.ofMinutes(10), Duration.ofHours(1))
                // A role bound to another subject: the intruder's JWT must not log in with it.
                .role("intruder", "spiffe://dev.keywarden.local/someone-else", "vault", Duration.ofMinutes(10), Duration.ofHours(1))
                .start();
        issuer = issuer(Duration.ofSeconds(2));
    }

    VaultIssuer issuer(Duration timeout) throws Exception {
        return issuer(timeout, Clock.systemUTC());
    }

    /** With {@code clock} as the issuer's time (when a token is past half its life). */
    VaultIssuer issuer(Duration timeout, Clock clock) throws Exception {
        io.keywarden.issuer.vault.VaultConnection cfg = new io.keywarden.issuer.vault.VaultConnection(URI.create(vault.address()), "", "jwt", Optional.empty(), timeout);
        return new VaultIssuer(cfg, new DevIdentityProvider(new SelectorAttestor(ProcAttestor.system(), () -> policy), signer, Clock.systemUTC()),
                clock);
    }

    @AfterEach
    void stop() {
        vault.close();
    }

    @Test
    void readinessFollowsVaultsHealthCodesEnterpriseOnesIncluded() {
        for (int up : new int[] {200, 429, 473}) {
            vault.healthStatus = up;
            assertTrue(issuer.unavailable().isEmpty(), "HTTP " + up + " serves");
        }
        for (int down : new int[] {472, 501, 503, 530, 500}) {
            vault.healthStatus = down;
            String why = issuer.unavailable().orElseThrow();
            assertTrue(why.contains("HTTP " + down), why);
        }
        vault.healthStatus = 472;
        assertTrue(issuer.unavailable().orElseThrow().contains("disaster-recovery secondary"));
        vault.healthStatus = 200;
    }

    @Test
    void issuesARealLeaseHonouringTheTtlAndRevokesIt() throws Exception {
        Lease l = issuer.issue(reviewer, policy.keys().get("openai"), null);
        assertTrue(new String(l.key().secretCopy(), StandardCharsets.UTF_8).startsWith("sk-vault-"));
        assertTrue(l.leaseId().startsWith("openai/creds/reviewer/"));
        assertTrue(l.providerKeyId().orElseThrow().startsWith("key_"));
        long life = Duration.between(l.issuedAt(), l.expiresAt()).toSeconds();
        assertTrue(life >= 29 && life <= 30, "the policy's ttl (30s) below the role's max: " + life);
        assertFalse(l.renewable(), "OpenAI leases are not renewable");
        assertEquals(1, vault.liveLeases().size());
        issuer.revoke(l);
        assertEquals(List.of(l.leaseId()), vault.revokedLeases);
        assertEquals(0, vault.liveLeases().size());
    }

    @Test
    void aWorkloadsTokenIsReusedAndRevokingOneLeaseSparesTheOthers() throws Exception {
        Lease a = issuer.issue(reviewer, policy.keys().get("openai"), null);
        Lease b = issuer.issue(reviewer, policy.keys().get("openai"), null);
        assertEquals(1, vault.logins.get(), "one login while the token has more than half its life");
        issuer.revoke(a);
        assertEquals(List.of(b.leaseId()), vault.liveLeases().stream().map(FakeVault.LeaseRec::id).toList(),
                "the shared token stays: the other lease lives");
    }

    @Test
    void aTokenPastHalfItsLifeIsReplaced() throws Exception {
        vault.role("reviewer", "spiffe://dev.keywarden.local/reviewer", "vault", Duration.ofSeconds(2), Duration.ofHours(1));
        io.keywarden.testkit.ManualClock clock = new io.keywarden.testkit.ManualClock(java.time.Instant.now());
        issuer = issuer(Duration.ofSeconds(2), clock);
        issuer.issue(reviewer, policy.keys().get("openai"), null);
        clock.advance(Duration.ofMillis(1100));  // past half the token's 2 s life, by the issuer's clock
        issuer.issue(reviewer, policy.keys().get("openai"), null);
        assertEquals(2, vault.logins.get());
    }

    @Test
    void effectiveExpiryIsTheTokensWhenItEndsFirst() throws Exception {
        vault.role("reviewer", "spiffe://dev.keywarden.local/reviewer", "vault", Duration.ofSeconds(12), Duration.ofHours(1));
        Lease l = issuer.issue(reviewer, policy.keys().get("openai"), null);
        long life = Duration.between(l.issuedAt(), l.expiresAt()).toSeconds();
        assertTrue(life <= 12, "a lease dies with its token: effective expiry " + life + "s");
    }

    @Test
    void aJwtForAnotherSubjectIsRefusedWithoutLeakingIt() {
        Workload intruder = policy.workload("intruder").orElseThrow();
        IssuerException e = assertThrows(IssuerException.class, () -> issuer.issue(intruder, policy.keys().get("openai"), null));
        assertTrue(e.getMessage().startsWith("vault login to auth/jwt with role intruder failed: HTTP 400: error validating token"),
                e.getMessage());
        assertFalse(e.retryable());
        assertFalse(e.getMessage().contains("eyJ"), "no JWT in the message");
    }

    @Test
    void failuresAreClassified() throws Exception {
        vault.failure = FakeVault.Failure.SEALED;
        IssuerException sealed = assertThrows(IssuerException.class, () -> issuer.issue(reviewer, policy.keys().get("openai"), null));
        assertEquals("vault login to auth/jwt with role reviewer failed: HTTP 503: Vault is sealed", sealed.getMessage());
        assertTrue(sealed.retryable());

        vault.failure = FakeVault.Failure.ENGINE_ERROR;
        IssuerException engine = assertThrows(IssuerException.class, () -> issuer.issue(reviewer, policy.keys().get("openai"), null));
        assertTrue(engine.getMessage().startsWith("vault read of openai/creds/reviewer failed: HTTP 500"), engine.getMessage());
        assertTrue(engine.retryable());

        vault.failure = FakeVault.Failure.BAD_TOKEN;
        IssuerException denied = assertThrows(IssuerException.class, () -> issuer.issue(reviewer, policy.keys().get("openai"), null));
        assertTrue(denied.getMessage().contains("HTTP 403: permission denied"), denied.getMessage());
        assertFalse(denied.retryable());
        assertFalse(denied.getMessage().contains("hvs."), "no token in the message");

        vault.failure = FakeVault.Failure.MALFORMED;
        IssuerException bad = assertThrows(IssuerException.class, () -> issuer.issue(reviewer, policy.keys().get("openai"), null));
        assertTrue(bad.retryable(), bad.getMessage());
        assertTrue(bad.getMessage().contains("malformed"), bad.getMessage());

        vault.failure = FakeVault.Failure.NONE;
        vault.delay = Duration.ofSeconds(3);
        long t0 = System.nanoTime();
        IssuerException slow = assertThrows(IssuerException.class, () -> issuer.issue(reviewer, policy.keys().get("openai"), null));
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 2900, "bounded by the 2 s timeout");
        assertTrue(slow.retryable(), slow.getMessage());
        vault.delay = Duration.ZERO;

        vault.stop();
        IssuerException refused = assertThrows(IssuerException.class, () -> issuer.issue(reviewer, policy.keys().get("openai"), null));
        assertTrue(refused.retryable(), refused.getMessage());
        assertTrue(refused.getMessage().contains("no HTTP answer"), refused.getMessage());
    }

    @Test
    void unknownRoleIsNotRetried() throws Exception {
        Policy other = PolicyLoader.parse(POLICY.replace("role: \"{workload}\"", "role: nope"), "p.yaml");
        IssuerException e = assertThrows(IssuerException.class,
                () -> issuer.issue(other.workload("reviewer").orElseThrow(), other.keys().get("openai"), null));
        assertTrue(e.getMessage().contains("HTTP 400"), e.getMessage());
        assertFalse(e.retryable());
    }
}
