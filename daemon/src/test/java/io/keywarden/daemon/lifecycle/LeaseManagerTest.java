package io.keywarden.daemon.lifecycle;

import io.keywarden.testkit.ManualClock;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.attestation.CgroupInfo;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyUnavailableException;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.Workload;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The lifecycle against a scripted issuer, with a fake clock: no sleeps. */
class LeaseManagerTest {
    static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    ManualClock clock;
    ManualScheduler scheduler;
    ScriptedIssuer issuer;
    Policy policy;
    Workload alice;
    Set<Integer> alivePids;
    LeaseManager leases;
    long seed = 42;

    @BeforeEach
    void setUp() throws Exception {
        clock = new ManualClock(T0);
        scheduler = new ManualScheduler(clock);
        issuer = new ScriptedIssuer(clock);
        policy = PolicyLoader.parse("""
                keys:
                  openai: {refreshAt: 0.5, grace: 30s}
                workloads:
                  - name: alice
                    spiffeId: spiffe://t/alice
                    selectors: [unix:uid:1001]
                    keys: [openai]
                idleRevoke: 2m
                """, "p.yaml");
        alice = policy.workload("alice").orElseThrow();
        alivePids = ConcurrentHashMap.newKeySet();
        leases = new LeaseManager(issuer, () -> policy, clock, scheduler, new Random(seed), LeaseEvents.NONE,
                p -> alivePids.contains(p.pid()));
    }

    ProcessInfo proc(int pid) {
        alivePids.add(pid);
        return new ProcessInfo(pid, 1000 + pid, 1001, 1001, 0, Optional.of("/usr/bin/python3"), Optional.empty(), CgroupInfo.NONE,
                Optional::empty);
    }

    String open(ProcessInfo p) throws Exception {
        CompletableFuture<IssuedKey> f = leases.current(alice, "openai", p).toCompletableFuture();
        scheduler.runPending();
        return new String(f.get().secretCopy(), StandardCharsets.US_ASCII);
    }

    Throwable openFails(ProcessInfo p) {
        CompletableFuture<IssuedKey> f = leases.current(alice, "openai", p).toCompletableFuture();
        scheduler.runPending();
        try {
            f.get();
            throw new AssertionError("a key was served");
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    /** The ledger's and the metrics' view of failures: a failed refresh is not a failed first issuance. */
    @Test
    void failedRefreshesAndFailedFirstIssuancesAreCountedApart() throws Exception {
        Metrics metrics = new Metrics();
        leases = new LeaseManager(issuer, () -> policy, clock, scheduler, new Random(seed),
                new AuditTrail(null, metrics, new Readiness()), p -> alivePids.contains(p.pid()));
        ProcessInfo a = proc(10);
        open(a);
        issuer.down = true;
        scheduler.advance(Duration.ofSeconds(56));
        String text = metrics.scrape();
        assertTrue(text.lines().anyMatch(l -> l.startsWith("keywarden_key_refreshes_total{issuer=\"\",key=\"openai\",outcome=\"error\"}")),
                text);
        assertFalse(text.lines().anyMatch(l -> l.startsWith("keywarden_keys_issued_total{issuer=\"\",key=\"openai\",outcome=\"error\"}")),
                text);

        Metrics fresh = new Metrics();
        leases = new LeaseManager(issuer, () -> policy, clock, scheduler, new Random(seed),
                new AuditTrail(null, fresh, new Readiness()), p -> alivePids.contains(p.pid()));
        openFails(proc(11));
        String first = fresh.scrape();
        assertTrue(first.lines().anyMatch(l -> l.startsWith("keywarden_keys_issued_total{issuer=\"\",key=\"openai\",outcome=\"error\"} 1.0")),
                first);
        assertFalse(first.lines().anyMatch(l -> l.startsWith("keywarden_key_refreshes_total{issuer=\"\",key=\"openai\",outcome=\"error\"}")),
                first);
    }

    @Test
    void firstOpensShareOneIssuance() throws Exception {
        ProcessInfo a = proc(10);
        ProcessInfo b = proc(11);
        CompletableFuture<IssuedKey> f1 = leases.current(alice, "openai", a).toCompletableFuture();
        CompletableFuture<IssuedKey> f2 = leases.current(alice, "openai", b).toCompletableFuture();
        assertFalse(f1.isDone(), "the first open waits for issuance");
        scheduler.runPending();
        assertEquals(f1.get().fingerprint(), f2.get().fingerprint());
        assertEquals(1, issuer.issueCount());
        assertEquals("sk-test-alice-1", open(a));
        assertEquals(1, issuer.issueCount(), "a valid key is reused, not reissued per open");
    }

    @Test
    void refreshHappensAtTheComputedTime() throws Exception {
        ProcessInfo a = proc(10);
        open(a);
        Instant due = Timing.refreshTime(T0, T0.plusSeconds(100), 0.5, new Random(seed));
        assertTrue(!due.isBefore(T0.plusSeconds(45)) && !due.isAfter(T0.plusSeconds(55)), due.toString());
        scheduler.advance(Duration.between(T0, due).minusMillis(1));
        assertEquals(1, issuer.issueCount());
        scheduler.advance(Duration.ofMillis(1));
        assertEquals(2, issuer.issueCount(), "refreshed at " + due);
        assertEquals(due, issuer.attempts.get(1));
        assertEquals("sk-test-alice-2", open(a), "new opens get the new key at once");
    }

    @Test
    void oldLeaseIsRevokedOnceEveryOpenerMovedToTheNewKey() throws Exception {
        ProcessInfo a = proc(10);
        ProcessInfo b = proc(11);
        open(a);
        open(b);
        scheduler.advance(Duration.ofSeconds(56));
        assertEquals(2, issuer.issueCount());
        assertEquals(List.of(), issuer.revoked, "old lease kept while its openers have not moved");
        open(a);
        assertEquals(List.of(), issuer.revoked, "b still holds the old key");
        open(b);
        assertEquals(List.of("lease-1"), issuer.revoked);
    }

    @Test
    void oldLeaseIsRevokedWhenGraceEnds() throws Exception {
        ProcessInfo a = proc(10);
        open(a);
        scheduler.advance(Duration.ofSeconds(56));
        Instant refreshed = issuer.attempts.get(1);
        scheduler.advance(Duration.between(clock.instant(), refreshed.plusSeconds(30)).minusMillis(1));
        assertEquals(List.of(), issuer.revoked);
        scheduler.advance(Duration.ofMillis(1));
        assertEquals(List.of("lease-1"), issuer.revoked, "revoked when the 30 s grace ended");
    }

    @Test
    void oldLeaseIsRevokedWhenItsOpenersExit() throws Exception {
        ProcessInfo a = proc(10);
        open(a);
        scheduler.advance(Duration.ofSeconds(56));
        assertEquals(List.of(), issuer.revoked);
        alivePids.remove(10);
        scheduler.advance(LeaseManager.SWEEP);
        assertEquals(List.of("lease-1"), issuer.revoked);
    }

    @Test
    void expiredKeyIsNeverServedAndStatusSaysWhy() throws Exception {
        ProcessInfo a = proc(10);
        open(a);
        issuer.down = true;
        scheduler.advance(Duration.ofSeconds(99));
        assertEquals("sk-test-alice-1", open(a), "served until it expires");
        assertEquals("ok", leases.status(alice, "openai").line());
        scheduler.advance(Duration.ofSeconds(1));
        assertInstanceOf(KeyUnavailableException.class, openFails(a));
        String status = leases.status(alice, "openai").line();
        assertTrue(status.startsWith("error: key expired at 2026-01-01T00:01:40Z; refresh failed: 503 Vault is sealed"), status);
    }

    @Test
    void afterAnOutageLongerThanTheTtlTheKeyComesBackWithinOneBackoffStep() throws Exception {
        ProcessInfo a = proc(10);
        open(a);
        issuer.down = true;
        scheduler.advance(Duration.ofMinutes(10));
        assertInstanceOf(KeyUnavailableException.class, openFails(a));
        int attemptsDuringOutage = issuer.attempts.size();
        assertTrue(attemptsDuringOutage < 20, "backed off: " + attemptsDuringOutage + " attempts in 10 minutes");
        Instant back = clock.instant();
        issuer.down = false;
        scheduler.advance(Timing.BACKOFF_MAX);
        assertEquals(2, issuer.issueCount(), "recovered without an open asking");
        Instant recovered = issuer.issued.get(1).issuedAt();
        assertTrue(!recovered.isAfter(back.plus(Timing.BACKOFF_MAX)), "recovered at " + recovered);
        assertEquals("sk-test-alice-2", open(a));
        assertEquals("ok", leases.status(alice, "openai").line());
    }

    @Test
    void backoffDoublesFromOneSecondToSixtyWithJitter() {
        Random r = new Random(1);
        for (int attempt = 1; attempt <= 10; attempt++) {
            long nominal = Math.min(1000L << (attempt - 1), 60_000L);
            long ms = Timing.backoff(attempt, r).toMillis();
            assertTrue(ms >= nominal * 0.8 && ms <= Math.min(nominal * 1.2, 60_000), attempt + ": " + ms);
        }
    }

    @Test
    void refreshTimeStaysWithinJitter() {
        Random r = new Random(7);
        for (int i = 0; i < 1000; i++) {
            Instant t = Timing.refreshTime(T0, T0.plusSeconds(1000), 0.67, r);
            long s = Duration.between(T0, t).toSeconds();
            assertTrue(s >= 620 && s <= 720, "refresh at " + s + "s of 1000s");
        }
    }

    @Test
    void idleLeaseIsRevokedAfterIdleRevoke() throws Exception {
        issuer.ttl = Duration.ofHours(1);
        ProcessInfo a = proc(10);
        open(a);
        alivePids.remove(10);
        scheduler.advance(Duration.ofSeconds(110));
        assertEquals(List.of(), issuer.revoked, "not idle long enough");
        scheduler.advance(Duration.ofSeconds(20));
        assertEquals(List.of("lease-1"), issuer.revoked);
        assertEquals(List.of(), issuer.liveLeases(), "no lease left after the workload exited");
        assertEquals(1, issuer.issueCount(), "idle slots are not refreshed");
        scheduler.advance(Duration.ofHours(2));
        assertEquals(1, issuer.issueCount());
    }

    /** A handover: the successor serves the same keys, revokes the overlap's old one when its holder moves, refreshes on time. */
    @Test
    void aSuccessorContinuesHandedLeasesWithoutIssuingOrRevoking() throws Exception {
        ProcessInfo a = proc(10);
        open(a);
        scheduler.advance(Duration.ofSeconds(56));
        assertEquals(2, issuer.issueCount(), "refreshed: lease-2 current, lease-1 still held by a");
        leases.shutdown(false);
        List<LeaseManager.HandedSlot> handed = leases.export();
        assertEquals(1, handed.size());
        assertEquals(List.of(), issuer.revoked, "a handover revokes nothing");
        assertEquals(10, handed.get(0).previousHolders().get(0).pid());
        LeaseManager successor = new LeaseManager(issuer, () -> policy, clock, scheduler, new Random(seed), LeaseEvents.NONE,
                p -> alivePids.contains(p.pid()));
        successor.adopt(handed);
        leases = successor;
        assertEquals("sk-test-alice-2", open(a), "the same key, not issued again");
        assertEquals(2, issuer.issueCount());
        scheduler.runPending();
        assertEquals(List.of("lease-1"), issuer.revoked, "a moved to the new key: the old one goes, as before the handover");
        Instant issued2 = issuer.attempts.get(1);
        scheduler.advance(Duration.between(clock.instant(), issued2.plusSeconds(56)));
        assertEquals(3, issuer.issueCount(), "the successor refreshes at the key's refreshAt");
    }

    @Test
    void shutdownRevokesEveryLease() throws Exception {
        open(proc(10));
        scheduler.advance(Duration.ofSeconds(56));
        leases.shutdown(true);
        assertEquals(List.of(), issuer.liveLeases());
        assertInstanceOf(KeyUnavailableException.class, openFails(proc(12)));
    }

    @Test
    void revokeNowDropsTheLeaseAndTheNextOpenGetsANewKey() throws Exception {
        ProcessInfo a = proc(10);
        open(a);
        assertEquals(1, leases.revokeNow("alice", null, RevokeReason.OPERATOR, "kill switch"));
        assertEquals(List.of("lease-1"), issuer.revoked);
        assertEquals("sk-test-alice-2", open(a));
    }

    @Test
    void aRevokeTheIssuerRefusesIsRecordedAndTriedAgainWhileTheLeaseLives() throws Exception {
        List<String> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
        leases = recordingWith(new LeaseEvents() {
            @Override
            public void revokeFailed(Workload w, String key, io.keywarden.issuer.Lease lease, String error,
                                     int attempt, Instant retryAt) {
                failures.add(lease.leaseId() + " #" + attempt + " " + (retryAt == null ? "last" : "again at " + retryAt));
            }
        });
        ProcessInfo a = proc(10);
        open(a);
        issuer.refuseRevokes = 2;
        assertEquals(1, leases.revokeNow("alice", null, RevokeReason.OPERATOR, "kill switch"));
        assertEquals(List.of("lease-1 #1 again at " + T0.plusSeconds(2)), failures);
        assertEquals(List.of(), issuer.revoked);
        List<Unrevoked.Entry> un = leases.unrevoked().list();
        assertEquals(1, un.size(), "listed as unrevoked while the revoke is retried");
        assertEquals("lease-1", un.get(0).leaseId());
        assertEquals(T0.plusSeconds(2), un.get(0).nextTry());
        scheduler.advance(java.time.Duration.ofSeconds(2));
        assertEquals(List.of("lease-1 #1 again at " + T0.plusSeconds(2), "lease-1 #2 again at " + T0.plusSeconds(6)),
                failures);
        scheduler.advance(java.time.Duration.ofSeconds(4));
        assertEquals(List.of("lease-1"), issuer.revoked, "the third attempt is taken");
        assertEquals(2, failures.size());
        assertEquals(0, leases.unrevoked().count(), "no longer unrevoked once the issuer took it");
        assertEquals(java.time.Duration.ofSeconds(300), LeaseManager.revokeBackoff(20), "at most five minutes apart");
    }

    @Test
    void aRevokeIsNotTriedPastItsLeasesExpiry() throws Exception {
        List<String> failures = new java.util.concurrent.CopyOnWriteArrayList<>();
        issuer.ttl = java.time.Duration.ofSeconds(5);
        leases = recordingWith(new LeaseEvents() {
            @Override
            public void revokeFailed(Workload w, String key, io.keywarden.issuer.Lease lease, String error,
                                     int attempt, Instant retryAt) {
                failures.add("#" + attempt + " " + (retryAt == null ? "last" : "again"));
            }
        });
        open(proc(10));
        issuer.refuseRevokes = 100;
        leases.revokeNow("alice", null, RevokeReason.OPERATOR, "kill switch");
        scheduler.advance(java.time.Duration.ofSeconds(2));
        Unrevoked.Entry given = leases.unrevoked().list().get(0);
        assertEquals(null, given.nextTry(), "given up: no next try");
        assertEquals(2, given.attempts());
        for (int i = 0; i < 5; i++) {
            scheduler.advance(java.time.Duration.ofSeconds(10));
        }
        assertEquals(List.of("#1 again", "#2 last"), failures, "2 s, then 4 s would pass the lease's 5 s: the last try says so");
        assertEquals(0, leases.unrevoked().count(), "past the lease's end (no expiry known at the provider) it is no longer listed");
    }

    @Test
    void aPendingRevokeHandedOverIsRetriedBySuccessorAtItsNextTry() throws Exception {
        List<String> revoked = new java.util.concurrent.CopyOnWriteArrayList<>();
        leases = recordingWith(new LeaseEvents() {
            @Override
            public void revoked(Workload w, String key, io.keywarden.issuer.Lease lease, RevokeReason code,
                                String reason) {
                revoked.add(w.name() + " " + lease.leaseId() + " " + lease.key().fingerprint() + " " + code + " " + reason);
            }
        });
        Unrevoked.Entry pending = new Unrevoked.Entry("alice", "spiffe://example.org/alice", "openai", "lease-old",
                "sha256:00112233445566aa", null, issuer.name(), 2, "HTTP 400", T0.minusSeconds(6), T0.plusSeconds(3),
                T0.plusSeconds(600), java.util.Optional.empty(), RevokeReason.OPERATOR, "revoked by drill");
        Unrevoked.Entry givenUp = new Unrevoked.Entry("alice", "spiffe://example.org/alice", "openai", "lease-older",
                "sha256:00112233445566bb", null, issuer.name(), 9, "HTTP 400", T0.minusSeconds(600), null,
                T0.plusSeconds(60), java.util.Optional.empty(), RevokeReason.IDLE, "idle");
        leases.adoptUnrevoked(List.of(pending, givenUp));
        assertEquals(2, leases.unrevoked().count(), "listed here as they were there");
        scheduler.advance(java.time.Duration.ofSeconds(2));
        assertEquals(List.of(), issuer.revoked, "not before its next try");
        scheduler.advance(java.time.Duration.ofSeconds(1));
        assertEquals(List.of("lease-old"), issuer.revoked, "retried by the successor");
        assertEquals(List.of("alice lease-old sha256:00112233445566aa OPERATOR revoked by drill"), revoked,
                "recorded as the revoke it was, with the key's fingerprint");
        assertEquals(List.of("lease-older"), leases.unrevoked().list().stream().map(Unrevoked.Entry::leaseId).toList(),
                "the one given up on stays listed until its key can no longer work");
    }

    /** The manager under test, reporting to {@code events} (what a test records). */
    private LeaseManager recordingWith(LeaseEvents events) {
        return new LeaseManager(issuer, () -> policy, clock, scheduler, new Random(seed), events,
                p -> alivePids.contains(p.pid()));
    }
}
