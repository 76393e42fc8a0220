package io.keywarden.tests.spire;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.source.ImmutableJWKSet;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.IdentityException;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.spire.DelegatedIdentityClient;
import io.keywarden.attestation.spire.SpireIdentityProvider;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The SPIRE identity provider against a fake agent speaking the real gRPC protocol on a Unix socket. */
class SpireAttestationIT {
    static final String POLICY = """
            keys: {openai: {}}
            workloads:
              - {name: alice, spiffeId: "spiffe://example.org/ns/agents/sa/alice", keys: [openai]}
              - {name: bob, spiffeId: "spiffe://example.org/ns/agents/sa/bob", keys: [openai]}
            """;

    Path dir;
    FakeSpireAgent agent;
    DelegatedIdentityClient client;
    SpireIdentityProvider spire;
    final List<Process> processes = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        Requirements.root();
        dir = Files.createTempDirectory("kw-spire-");
        Path sock = dir.resolve("admin.sock");
        agent = new FakeSpireAgent(sock, "example.org").register("/ns/agents/sa/alice", 1001).start();
        client = new DelegatedIdentityClient(sock, Duration.ofMillis(800));
        warmUp(sock);
        Policy policy = PolicyLoader.parse(POLICY, "p.yaml");
        spire = new SpireIdentityProvider(ProcAttestor.system(), client, () -> policy, "vault", Clock.systemUTC());
    }

    /**
     * The first gRPC call of a JVM loads Netty and the generated stubs, which can take longer than
     * the 800 ms deadline the tests use on a cold machine: pay it once, with a patient client, and
     * forget the call.
     */
    private void warmUp(Path sock) throws Exception {
        try (DelegatedIdentityClient patient = new DelegatedIdentityClient(sock, Duration.ofSeconds(20))) {
            try {
                patient.fetchJwtSvids((int) ProcessHandle.current().pid(), List.of("vault"));
            } catch (Exception ignored) {
                // Any answer (even "no entry") means the transport is warm.
            }
        }
        agent.calls.set(0);
    }

    @AfterEach
    void stop() throws Exception {
        processes.forEach(Process::destroyForcibly);
        if (client != null) {
            client.close();
        }
        if (agent != null) {
            agent.close();
        }
        if (dir != null) {
            Files.deleteIfExists(dir.resolve("admin.sock"));
            Files.deleteIfExists(dir);
        }
    }

    /** A real process of {@code uid}; its pid is what SPIRE attests. */
    int spawn(int uid) throws Exception {
        Process p = new ProcessBuilder("setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", "sleep", "60").start();
        processes.add(p);
        Await.until(Duration.ofSeconds(10), () -> Files.readString(Path.of("/proc", Long.toString(p.pid()), "status"))
                .contains("Uid:\t" + uid), () -> "setpriv did not switch to uid " + uid);
        return (int) p.pid();
    }

    Attestation attest(int pid, int uid) {
        return spire.attest(pid, uid, uid);
    }

    @Test
    void attestsByPidAndTheSvidVerifiesAgainstTheAgentsKeys() throws Exception {
        int pid = spawn(1001);
        Attestation.Identified who = assertInstanceOf(Attestation.Identified.class, attest(pid, 1001));
        assertEquals("alice", who.workload().name());
        assertEquals(pid, who.process().pid());

        JwtSvid svid = spire.fetchJwtSvid(who.workload(), who.process());
        DefaultJWTProcessor<SecurityContext> p = new DefaultJWTProcessor<>();
        p.setJWSKeySelector(new JWSVerificationKeySelector<>(JWSAlgorithm.ES256,
                new ImmutableJWKSet<>(JWKSet.parse(agent.jwksJson()))));
        p.setJWTClaimsSetVerifier(new DefaultJWTClaimsVerifier<>("vault",
                new JWTClaimsSet.Builder().subject("spiffe://example.org/ns/agents/sa/alice").build(), Set.of("iat", "exp")));
        assertEquals(List.of("vault"), p.process(svid.token(), null).getAudience());
    }

    /**
     * The agent hands out the same SVID for the same audiences until half its life (as SPIRE's does),
     * so a single-use assertion is fetched with a unique second audience: a new SVID, still for the
     * requested audience.
     */
    @Test
    void aFreshSvidIsNewBecauseItAsksWithAUniqueSecondAudience() throws Exception {
        int pid = spawn(1001);
        Attestation.Identified who = assertInstanceOf(Attestation.Identified.class, attest(pid, 1001));
        JwtSvid cached = spire.fetchJwtSvid(who.workload(), who.process());
        var direct = client.fetchJwtSvids(pid, List.of("vault"));
        assertEquals(cached.token(), direct.get(0).token(), "the agent itself answers the same SVID again");
        JwtSvid fresh = spire.fetchFreshJwtSvid(who.workload(), who.process(), "vault");
        JwtSvid fresh2 = spire.fetchFreshJwtSvid(who.workload(), who.process(), "vault");
        assertFalse(cached.token().equals(fresh.token()), "a new SVID (compared without printing either)");
        assertFalse(fresh.token().equals(fresh2.token()), "each fresh SVID is new");
        List<String> aud = com.nimbusds.jwt.SignedJWT.parse(fresh.token()).getJWTClaimsSet().getAudience();
        assertEquals(2, aud.size());
        assertEquals("vault", aud.get(0), "the requested audience first");
        assertTrue(aud.get(1).startsWith(SpireIdentityProvider.ONCE_AUDIENCE), aud.toString());
        assertSame(cached, spire.fetchJwtSvid(who.workload(), who.process()), "the cached one is untouched");
    }

    @Test
    void identityIsCachedPerProcessAndSvidPerSpiffeIdUntilHalfLife() throws Exception {
        int pid = spawn(1001);
        Attestation first = attest(pid, 1001);
        Attestation.Identified who = assertInstanceOf(Attestation.Identified.class, first, () -> first.toString());
        assertInstanceOf(Attestation.Identified.class, attest(pid, 1001));
        assertEquals(1, agent.calls.get(), "one round trip per process");
        // Named once, the answer is kept on the cached process: a repeated open makes nothing new.
        var kept = spire.attestWithoutWaiting(pid, 1001, 1001);
        assertInstanceOf(Attestation.Identified.class, kept.orElseThrow());
        assertSame(kept, spire.attestWithoutWaiting(pid, 1001, 1001));
        JwtSvid a = spire.fetchJwtSvid(who.workload(), who.process());
        assertSame(a, spire.fetchJwtSvid(who.workload(), who.process()));
        assertEquals(1, agent.calls.get(), "the SVID from attestation is reused while fresh");
    }

    /**
     * With SPIRE every workload refuses a traced caller (its identity may rest on the executable):
     * a process of alice's uid run under a tracer, first and cached.
     */
    @Test
    void aTracedProcessIsRefusedWhateverItsEntry() throws Exception {
        Process tracer = new ProcessBuilder("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups",
                io.keywarden.tests.support.CProgram.binary("kwtraced").toString(), "/usr/bin/sleep", "60").start();
        processes.add(tracer);
        Path children = Path.of("/proc", Long.toString(tracer.pid()), "task", Long.toString(tracer.pid()), "children");
        io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10), () -> {
            String c = Files.exists(children) ? Files.readString(children).trim() : "";
            return !c.isEmpty() && Files.readString(Path.of("/proc", c, "status")).contains("TracerPid:\t" + tracer.pid());
        }, () -> "kwtraced never ran its traced child");
        int traced = Integer.parseInt(Files.readString(children).trim());
        for (int i = 0; i < 2; i++) {
            Attestation.Unidentified u = assertInstanceOf(Attestation.Unidentified.class, attest(traced, 1001));
            assertTrue(u.reason().contains("being traced by pid " + tracer.pid()), u.reason());
        }
        assertInstanceOf(Attestation.Identified.class, attest(spawn(1001), 1001), "the same uid untraced is alice");
    }

    @Test
    void noEntryIsDenied() throws Exception {
        int pid = spawn(1002);
        Attestation.Unidentified u = assertInstanceOf(Attestation.Unidentified.class, attest(pid, 1002));
        assertTrue(u.reason().contains("no identity issued"), u.reason());
        assertTrue(u.reason().contains("no registration entry matches"), u.reason());
    }

    @Test
    void notADelegateIsDeniedWithTheReason() throws Exception {
        agent.mode = FakeSpireAgent.Mode.NOT_A_DELEGATE;
        Attestation.Unidentified u = assertInstanceOf(Attestation.Unidentified.class, attest(spawn(1001), 1001));
        assertTrue(u.reason().contains("not an authorized delegate"), u.reason());
    }

    @Test
    void twoEntriesTheBothPolicyKnowsAreAmbiguous() throws Exception {
        agent.register("/ns/agents/sa/bob", 1001);
        Attestation.Unidentified u = assertInstanceOf(Attestation.Unidentified.class, attest(spawn(1001), 1001));
        assertTrue(u.reason().startsWith("ambiguous"), u.reason());
    }

    @Test
    void anEntryThePolicyDoesNotKnowIsIgnored() throws Exception {
        agent.register("/ns/other/sa/unrelated", 1001);
        Attestation.Identified who = assertInstanceOf(Attestation.Identified.class, attest(spawn(1001), 1001));
        assertEquals("alice", who.workload().name());
    }

    @Test
    void unavailableAndSlowAgentsAreReportedAndRetryable() throws Exception {
        agent.mode = FakeSpireAgent.Mode.UNAVAILABLE;
        Attestation.Unidentified u = assertInstanceOf(Attestation.Unidentified.class, attest(spawn(1001), 1001));
        assertTrue(u.reason().contains("unavailable"), u.reason());

        agent.mode = FakeSpireAgent.Mode.NORMAL;
        agent.delay = Duration.ofSeconds(2);
        long t0 = System.nanoTime();
        Attestation.Unidentified slow = assertInstanceOf(Attestation.Unidentified.class, attest(spawn(1001), 1001));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(slow.reason().contains("did not answer within 800 ms"), slow.reason());
        assertTrue(ms < 1800, "bounded by the deadline, took " + ms + " ms");
    }

    @Test
    void agentRestartIsSurvived() throws Exception {
        agent.stop();
        Attestation.Unidentified down = assertInstanceOf(Attestation.Unidentified.class, attest(spawn(1001), 1001));
        assertTrue(down.reason().contains("unavailable"), down.reason());
        agent.start();
        long t0 = System.nanoTime();
        Attestation a = attest(spawn(1001), 1001);
        assertInstanceOf(Attestation.Identified.class, a, "after restart: " + a);
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 2000, "reconnected at once");
    }

    @Test
    void exitedProcessCannotGetAnSvid() throws Exception {
        int pid = spawn(1001);
        Attestation.Identified who = assertInstanceOf(Attestation.Identified.class, attest(pid, 1001));
        processes.get(0).destroyForcibly().waitFor();
        assertTrue(!spire.isAlive(who.process()));
        assertEquals(1, agent.calls.get());
        // A second provider has no cached SVID, as after half-life: it must attest a live process.
        Policy policy = PolicyLoader.parse(POLICY, "p.yaml");
        SpireIdentityProvider fresh = new SpireIdentityProvider(ProcAttestor.system(), client, () -> policy, "vault",
                Clock.systemUTC());
        IdentityException e = assertThrows(IdentityException.class, () -> fresh.fetchJwtSvid(who.workload(), who.process()));
        assertTrue(e.getMessage().contains("no live process"), e.getMessage());
    }
}
