package io.keywarden.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class PolicyMatchingTest {
    private static final String SHA = "ab".repeat(32);

    record Proc(int uid, int gid, String exePath, String sha, String pod, String container, AtomicInteger hashes)
            implements ProcessFacts {
        Proc(int uid, int gid, String exePath) {
            this(uid, gid, exePath, SHA, null, null, new AtomicInteger());
        }

        @Override
        public int pid() {
            return 4242;
        }

        @Override
        public Optional<String> exe() {
            return Optional.ofNullable(exePath);
        }

        /** The test's stand-in for file identity: the path the fake process was started from. */
        @Override
        public boolean exeIs(String path) {
            return path.equals(exePath);
        }

        @Override
        public Optional<String> exeSha256() {
            hashes.incrementAndGet();
            return Optional.ofNullable(sha);
        }

        @Override
        public Optional<String> podUid() {
            return Optional.ofNullable(pod);
        }

        @Override
        public Optional<String> containerId() {
            return Optional.ofNullable(container);
        }
    }

    private static final String POLICY = """
            keys:
              openai: {}
              anthropic: {}
            workloads:
              - name: reviewer
                spiffeId: spiffe://example.org/reviewer
                selectors: [unix:uid:1001, unix:path:/usr/bin/python3]
                keys: [openai]
                readers: {uid: [1001], exe: [/usr/bin/python3]}
              - name: any-python
                spiffeId: spiffe://example.org/py
                selectors: [unix:path:/usr/bin/python3]
                keys: [anthropic]
              - name: batch
                spiffeId: spiffe://example.org/batch
                selectors: [unix:uid:1002, unix:sha256:%s]
                keys: [openai, anthropic]
              - name: pod
                spiffeId: spiffe://example.org/pod
                selectors: [k8s:pod-uid:0f3c2a1e-1111-2222-3333-444455556666]
                keys: [openai]
              - name: nobody
                spiffeId: spiffe://example.org/nobody
                keys: [openai]
            """.formatted(SHA);

    private final Policy policy;

    PolicyMatchingTest() throws Exception {
        policy = PolicyLoader.parse(POLICY, "p.yaml");
    }

    @Test
    void singleMatch() {
        WorkloadMatch m = policy.match(new Proc(1002, 1002, "/opt/batch"));
        assertEquals("batch", assertInstanceOf(WorkloadMatch.Matched.class, m).workload().name());
    }

    @Test
    void twoWorkloadsMatchingIsAmbiguous() {
        WorkloadMatch m = policy.match(new Proc(1001, 1001, "/usr/bin/python3"));
        WorkloadMatch.Ambiguous a = assertInstanceOf(WorkloadMatch.Ambiguous.class, m);
        assertEquals("ambiguous: matches workloads reviewer, any-python", a.describe());
    }

    @Test
    void noMatch() {
        assertInstanceOf(WorkloadMatch.None.class, policy.match(new Proc(5000, 5000, "/bin/cat")));
    }

    @Test
    void allSelectorsMustHold() {
        Proc wrongDigest = new Proc(1002, 1002, "/opt/batch", "cd".repeat(32), null, null, new AtomicInteger());
        assertInstanceOf(WorkloadMatch.None.class, policy.match(wrongDigest));
    }

    @Test
    void digestIsComputedOnlyWhenCheaperSelectorsHeld() {
        Proc p = new Proc(5000, 5000, "/bin/cat");
        policy.match(p);
        assertEquals(0, p.hashes().get());
    }

    @Test
    void podUidFromCgroupMatchesCaseInsensitively() {
        Proc p = new Proc(0, 0, "/app", null, "0F3C2A1E-1111-2222-3333-444455556666", null, new AtomicInteger());
        assertEquals("pod", assertInstanceOf(WorkloadMatch.Matched.class, policy.match(p)).workload().name());
    }

    @Test
    void workloadWithoutSelectorsMatchesNothing() {
        Workload nobody = policy.workload("nobody").orElseThrow();
        assertFalse(nobody.matches(new Proc(0, 0, "/bin/sh")));
    }

    @Test
    void readersRestrictUidAndExe() {
        Readers r = policy.workload("reviewer").orElseThrow().readers();
        assertTrue(r.refusal(new Proc(1001, 1, "/usr/bin/python3")).isEmpty());
        assertEquals("uid 1002 is not a permitted reader", r.refusal(new Proc(1002, 1, "/usr/bin/python3")).orElseThrow());
        assertEquals("executable /bin/cat is not a permitted reader", r.refusal(new Proc(1001, 1, "/bin/cat")).orElseThrow());
        assertEquals("executable (unreadable) is not a permitted reader", r.refusal(new Proc(1001, 1, null)).orElseThrow());
    }

    @Test
    void lookupBySpiffeIdAndGrants() {
        Workload w = policy.workloadBySpiffeId(SpiffeId.parse("spiffe://example.org/batch")).orElseThrow();
        assertTrue(w.grants("anthropic"));
        assertFalse(policy.workload("reviewer").orElseThrow().grants("anthropic"));
        assertTrue(policy.workloadBySpiffeId(SpiffeId.parse("spiffe://example.org/other")).isEmpty());
    }

    @Test
    void exampleInDeployLoads() throws Exception {
        Policy p = PolicyLoader.load(Path.of("../deploy/examples/policy.yaml"));
        assertEquals(2, p.workloads().size());
        assertEquals("openai/creds/reviewer", p.keys().get("openai").vault().orElseThrow().pathFor(p.workload("reviewer").orElseThrow()));
        assertTrue(p.keys().get("openai").vault().isPresent());
    }

    @Test
    void aTraceIsRefusedWhereAWorkloadIsToldApartFromItsUid() throws Exception {
        Policy p = PolicyLoader.parse("""
                keys: {openai: {}}
                workloads:
                  - {name: uid, spiffeId: "spiffe://t/a", selectors: ["unix:uid:1", "unix:gid:2"], keys: [openai]}
                  - {name: uid-readers, spiffeId: "spiffe://t/b", selectors: ["unix:uid:3"], keys: [openai], readers: {uid: [3]}}
                  - {name: path, spiffeId: "spiffe://t/c", selectors: ["unix:uid:4", "unix:path:/usr/bin/python3"], keys: [openai]}
                  - {name: exe, spiffeId: "spiffe://t/d", selectors: ["unix:uid:5"], keys: [openai], readers: {exe: [/usr/bin/cat]}}
                  - {name: pod, spiffeId: "spiffe://t/e", selectors: ["k8s:pod-uid:0f0e0d0c-0b0a-0908-0706-050403020100"], keys: [openai]}
                """, "p.yaml");
        assertFalse(p.workload("uid").orElseThrow().refusesTraced(), "whoever may trace it may open the key itself");
        assertFalse(p.workload("uid-readers").orElseThrow().refusesTraced());
        assertTrue(p.workload("path").orElseThrow().refusesTraced());
        assertTrue(p.workload("exe").orElseThrow().refusesTraced());
        assertTrue(p.workload("pod").orElseThrow().refusesTraced());
    }
}
