package io.keywarden.delivery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.CgroupInfo;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.attestation.WorkloadAttestor;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.Workload;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The access core without a mount: every outcome, and what it records before answering. */
class AccessDeciderTest {
    private static final Instant NOW = Instant.parse("2026-11-30T12:00:00Z");
    private static final Clock CLOCK = Clock.fixed(NOW, ZoneOffset.UTC);

    private final Policy policy = parse("""
            keys:
              openai: {}
              anthropic: {}
            workloads:
              - name: reviewer
                spiffeId: spiffe://example.org/reviewer
                selectors: [unix:uid:1001]
                keys: [openai]
              - name: pinned
                spiffeId: spiffe://example.org/pinned
                selectors: [unix:uid:1002]
                keys: [openai, anthropic]
                readers: {uid: [1002], exe: [/bin/true]}
            """);
    private final Attestations attestations = new Attestations();
    private final Keys keys = new Keys();
    private final Recorder recorder = new Recorder();
    private final AtomicBoolean alive = new AtomicBoolean(true);
    private ScheduledExecutorService timer;
    private AccessDecider decider;

    /** Attestations by tid; a tid above 1000 must "ask SPIRE" (no answer without waiting). */
    private static final class Attestations extends ConcurrentHashMap<Integer, Attestation> {
    }

    private final class Attestor implements WorkloadAttestor {
        final AtomicInteger blockingCalls = new AtomicInteger();
        final List<String> threads = new CopyOnWriteArrayList<>();

        @Override
        public Optional<Attestation> attestWithoutWaiting(int tid, int uid, int gid) {
            return tid > 1000 ? Optional.empty() : Optional.of(attest(tid, uid, gid));
        }

        @Override
        public Attestation attest(int tid, int uid, int gid) {
            if (tid > 1000) {
                blockingCalls.incrementAndGet();
                threads.add(Thread.currentThread().getName());
            }
            return attestations.getOrDefault(tid, new Attestation.Unidentified(null, "no such process"));
        }

        @Override
        public boolean isAlive(ProcessInfo process) {
            return alive.get();
        }
    }

    private static final class Keys implements KeySource {
        final java.util.Map<String, CompletableFuture<IssuedKey>> next = new ConcurrentHashMap<>();
        final AtomicInteger calls = new AtomicInteger();

        @Override
        public CompletionStage<IssuedKey> current(Workload workload, String key, ProcessInfo opener) {
            calls.incrementAndGet();
            CompletableFuture<IssuedKey> f = next.get(workload.name() + "/" + key);
            return f != null ? f : CompletableFuture.failedFuture(new KeyUnavailableException("vault is sealed"));
        }

        @Override
        public LeaseStatus status(Workload workload, String key) {
            return LeaseStatus.OK;
        }
    }

    private static final class Recorder implements AccessListener {
        final List<String> records = new CopyOnWriteArrayList<>();
        volatile boolean broken;

        @Override
        public void granted(Attestation.Identified who, String key, String file, IssuedKey issued) {
            if (broken) {
                throw new IllegalStateException("disk full");
            }
            records.add("granted " + who.workload().name() + " " + key + "/" + file
                    + (issued == null ? "" : " " + issued.fingerprint()));
        }

        @Override
        public void denied(Attestation who, String key, String file, io.keywarden.delivery.Decision.Refusal code,
                           String reason) {
            records.add("denied " + key + "/" + file + ": " + reason);
        }
    }

    private Attestor attestor;

    @BeforeEach
    void setUp() {
        timer = Executors.newScheduledThreadPool(1, r -> new Thread(r, "test-timer"));
        attestor = new Attestor();
        decider = new AccessDecider(() -> policy, attestor, keys, recorder, CLOCK, Duration.ofMillis(300),
                Executors.newSingleThreadExecutor(r -> new Thread(r, "test-attest")), timer);
        attestations.put(1, identified(1, 1001, "/usr/bin/python3", "reviewer"));
        attestations.put(2, identified(2, 1002, "/bin/true", "pinned"));
        attestations.put(3, identified(3, 1002, "/bin/false", "pinned"));
        attestations.put(4, new Attestation.Unidentified(null, "no workload matches uid 4242"));
        attestations.put(1001, identified(1001, 1001, "/usr/bin/python3", "reviewer"));
    }

    @AfterEach
    void tearDown() {
        timer.shutdownNow();
    }

    private static Policy parse(String yaml) {
        try {
            return PolicyLoader.parse(yaml, "p.yaml");
        } catch (io.keywarden.policy.yaml.ProblemsException e) {
            throw new AssertionError(e.getMessage(), e);
        }
    }

    private Attestation identified(int pid, int uid, String exe, String workload) {
        // The executable by identity, as /proc/PID/exe gives it: a real file of this host.
        ProcessInfo p = new ProcessInfo(pid, 100 + pid, uid, uid, 0, Optional.of(exe),
                io.keywarden.linux.FileIdentity.of(exe), CgroupInfo.NONE, Optional::empty);
        Workload w = policy.workload(workload).orElseThrow();
        return new Attestation.Identified(p, w, w.spiffeId());
    }

    private static IssuedKey key(String text, Instant expires) {
        return new IssuedKey(text.getBytes(StandardCharsets.US_ASCII), expires, "lease-" + text);
    }

    private Decision authorize(int tid, String key) throws Exception {
        return decider.authorize(new Caller(tid, 0, 0), key, "api_key").toCompletableFuture().get(5, TimeUnit.SECONDS);
    }

    @Test
    void anUnknownKeyIsNoSuchKeyAndNotRecorded() throws Exception {
        assertEquals(new Decision.NoSuchKey("nope"), authorize(1, "nope"));
        assertEquals(List.of(), recorder.records);
    }

    @Test
    void eachDenialHasItsCodeAndIsRecordedBeforeItIsReturned() throws Exception {
        Decision d = authorize(4, "openai");
        assertEquals(Decision.DenyReason.UNIDENTIFIED, ((Decision.Denied) d).code());
        d = authorize(1, "anthropic");
        assertEquals(Decision.DenyReason.NOT_GRANTED, ((Decision.Denied) d).code());
        d = authorize(3, "openai");
        assertEquals(Decision.DenyReason.READERS, ((Decision.Denied) d).code());
        assertEquals(List.of("denied openai/api_key: no workload matches uid 4242",
                "denied anthropic/api_key: workload reviewer is not granted key anthropic",
                "denied openai/api_key: " + ((Decision.Denied) d).reason()), recorder.records);
        assertTrue(((Decision.Denied) d).reason().contains("/bin/false"), ((Decision.Denied) d).reason());
    }

    @Test
    void authorisedIsAGrantWithoutAKeyAndNothingRecordedYet() throws Exception {
        Decision.Granted g = assertInstanceOf(Decision.Granted.class, authorize(2, "anthropic"));
        assertEquals("pinned", g.who().workload().name());
        assertNull(g.issued());
        assertEquals(List.of(), recorder.records);
        assertEquals(0, keys.calls.get(), "authorising issues nothing");
    }

    @Test
    void obtainRecordsTheGrantWithTheKeysFingerprint() throws Exception {
        IssuedKey k = key("sk-test-1", NOW.plusSeconds(600));
        keys.next.put("reviewer/openai", CompletableFuture.completedFuture(k));
        Attestation.Identified who = (Attestation.Identified) attestations.get(1);
        Decision.Granted g = assertInstanceOf(Decision.Granted.class,
                decider.obtain(who, "openai", "api_key").toCompletableFuture().get());
        assertEquals(k, g.issued());
        assertEquals(List.of("granted reviewer openai/api_key " + k.fingerprint()), recorder.records);
        assertFalse(recorder.records.get(0).contains("sk-test-1"), "a fingerprint, never the key");
    }

    @Test
    void issuerFailureTimeoutAndExpiryAreUnavailable() throws Exception {
        Attestation.Identified who = (Attestation.Identified) attestations.get(1);
        Decision.Unavailable u = assertInstanceOf(Decision.Unavailable.class,
                decider.obtain(who, "openai", "api_key").toCompletableFuture().get());
        assertEquals(Decision.UnavailableReason.ISSUER_FAILED, u.code());
        assertEquals("vault is sealed", u.reason());

        keys.next.put("reviewer/openai", new CompletableFuture<>());
        long t0 = System.nanoTime();
        u = assertInstanceOf(Decision.Unavailable.class, decider.obtain(who, "openai", "api_key").toCompletableFuture()
                .get(5, TimeUnit.SECONDS));
        assertEquals(Decision.UnavailableReason.ISSUER_TIMEOUT, u.code());
        assertTrue(System.nanoTime() - t0 >= 250_000_000L, "waited for the open timeout");

        keys.next.put("reviewer/openai", CompletableFuture.completedFuture(key("old", NOW.minusSeconds(1))));
        u = assertInstanceOf(Decision.Unavailable.class, decider.obtain(who, "openai", "api_key").toCompletableFuture().get());
        assertEquals(Decision.UnavailableReason.EXPIRED, u.code());
        assertEquals(3, recorder.records.stream().filter(r -> r.startsWith("denied")).count(), recorder.records.toString());
    }

    @Test
    void aKeyIssuedAfterTheTimeoutIsNeitherGrantedNorRecorded() throws Exception {
        Attestation.Identified who = (Attestation.Identified) attestations.get(1);
        CompletableFuture<IssuedKey> slow = new CompletableFuture<>();
        keys.next.put("reviewer/openai", slow);
        Decision d = decider.obtain(who, "openai", "api_key").toCompletableFuture().get(5, TimeUnit.SECONDS);
        assertInstanceOf(Decision.Unavailable.class, d);
        slow.complete(key("late", NOW.plusSeconds(600)));
        assertTrue(recorder.records.stream().noneMatch(r -> r.startsWith("granted")), recorder.records.toString());
    }

    @Test
    void aBlockedWorkloadIsDeniedAndAProcessGoneDuringIssuanceToo() throws Exception {
        Attestation.Identified who = (Attestation.Identified) attestations.get(1);
        keys.next.put("reviewer/openai", CompletableFuture.failedFuture(new KeyBlockedException("blocked by an operator: leak")));
        Decision.Denied d = assertInstanceOf(Decision.Denied.class,
                decider.obtain(who, "openai", "api_key").toCompletableFuture().get());
        assertEquals(Decision.DenyReason.BLOCKED, d.code());

        CompletableFuture<IssuedKey> pending = new CompletableFuture<>();
        keys.next.put("reviewer/openai", pending);
        CompletableFuture<Decision> f = decider.obtain(who, "openai", "api_key").toCompletableFuture();
        alive.set(false);
        pending.complete(key("k2", NOW.plusSeconds(600)));
        d = assertInstanceOf(Decision.Denied.class, f.get(5, TimeUnit.SECONDS));
        assertEquals(Decision.DenyReason.PROCESS_GONE, d.code());
    }

    @Test
    void aGrantThatCannotBeRecordedIsNotGiven() throws Exception {
        recorder.broken = true;
        keys.next.put("reviewer/openai", CompletableFuture.completedFuture(key("k", NOW.plusSeconds(600))));
        Decision.Unavailable u = assertInstanceOf(Decision.Unavailable.class,
                decider.obtain((Attestation.Identified) attestations.get(1), "openai", "api_key").toCompletableFuture().get());
        assertEquals(Decision.UnavailableReason.NOT_RECORDED, u.code());
        assertFalse(u.reason().contains("sk-"));
    }

    @Test
    void attestationThatMustWaitRunsOffTheCallersThread() throws Exception {
        assertInstanceOf(Decision.Granted.class, authorize(1, "openai"));
        assertEquals(0, attestor.blockingCalls.get(), "answered from /proc and caches, inline");
        assertInstanceOf(Decision.Granted.class, authorize(1001, "openai"));
        assertEquals(List.of("test-attest"), attestor.threads, "the SPIRE round trip ran on the attestation executor");
    }

    @Test
    void listingsAndNamesRecordNothing() {
        assertEquals(List.of("openai", "anthropic"), decider.visibleKeys(attestations.get(2)));
        assertEquals(List.of(), decider.visibleKeys(attestations.get(3)), "readers refuse /bin/false");
        assertEquals(List.of("openai"), decider.visibleKeys(attestations.get(1)));
        assertEquals(List.of(), decider.visibleKeys(attestations.get(4)));
        assertEquals(List.of(), recorder.records);
    }
}
