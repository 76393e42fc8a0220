package io.keywarden.attestation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * A repeated open by one thread is attested without allocating: measured with the JVM's count of
 * bytes this thread allocated, over many warm calls (a single object per call would be ≥ 16 bytes
 * a call). On the real /proc, attesting this very thread.
 */
class AttestationAllocationTest {
    static final int CALLS = 20_000;

    static int ownTid() throws Exception {
        // /proc/thread-self -> "PID/task/TID"
        String link = Files.readSymbolicLink(Path.of("/proc/thread-self")).toString();
        return Integer.parseInt(link.substring(link.lastIndexOf('/') + 1));
    }

    /** A policy of one workload, {@code me}, with {@code selectors} and key {@code openai}. */
    static Policy onlyMe(String... selectors) throws io.keywarden.policy.yaml.ProblemsException {
        return PolicyLoader.parse("""
                keys: {openai: {}}
                workloads:
                  - {name: me, spiffeId: "spiffe://t/me", selectors: [%s], keys: [openai]}
                """.formatted(String.join(", ", java.util.Arrays.stream(selectors).map(x -> "\"" + x + "\"").toList())),
                "p.yaml");
    }

    static long allocatedBy(Runnable r) {
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = mx.getCurrentThreadAllocatedBytes();
        r.run();
        return mx.getCurrentThreadAllocatedBytes() - before;
    }

    @Test
    void aWarmAttestationAllocatesNothing() throws Exception {
        int tid = ownTid();
        try (ProcAttestor attestor = ProcAttestor.system()) {
            ProcessInfo p = attestor.attest(tid);
            Runnable calls = () -> {
                for (int i = 0; i < CALLS; i++) {
                    try {
                        if (attestor.attestIgnoringTracer(tid, p.uid(), p.gid()) == null) {
                            throw new AssertionError();
                        }
                    } catch (ProcessGoneException e) {
                        throw new AssertionError(e);
                    }
                }
            };
            calls.run();   // warm: cached, compiled
            long bytes = allocatedBy(calls);
            assertTrue(bytes < CALLS, bytes + " bytes allocated by " + CALLS + " warm attestations (thread descriptors: "
                    + attestor.usesThreadDescriptors() + ")");
        }
    }

    @Test
    void aWarmWorkloadMatchAllocatesNothing() throws Exception {
        int tid = ownTid();
        try (ProcAttestor proc = ProcAttestor.system()) {
            ProcessInfo p = proc.attest(tid);
            Policy policy = onlyMe("unix:uid:" + p.uid());
            SelectorAttestor dev = new SelectorAttestor(proc, () -> policy);
            Attestation first = dev.attest(tid, p.uid(), p.gid());
            assertEquals("me", assertInstanceOf(Attestation.Identified.class, first).workload().name());
            assertSame(first, dev.attest(tid, p.uid(), p.gid()), "the policy's answer is kept with the process");
            Runnable calls = () -> {
                for (int i = 0; i < CALLS; i++) {
                    if (!(dev.attest(tid, p.uid(), p.gid()) instanceof Attestation.Identified)) {
                        throw new AssertionError();
                    }
                }
            };
            calls.run();
            long bytes = allocatedBy(calls);
            assertTrue(bytes < CALLS, bytes + " bytes allocated by " + CALLS + " warm workload matches");
        }
    }

    @Test
    void aNewPolicyIsAskedAgain() throws Exception {
        int tid = ownTid();
        try (ProcAttestor proc = ProcAttestor.system()) {
            ProcessInfo p = proc.attest(tid);
            String yaml = """
                    keys: {openai: {}}
                    workloads:
                      - {name: %s, spiffeId: "spiffe://t/%s", selectors: ["unix:uid:%d"], keys: [openai]}
                    """;
            Policy[] now = {PolicyLoader.parse(yaml.formatted("first", "first", p.uid()), "p.yaml")};
            SelectorAttestor dev = new SelectorAttestor(proc, () -> now[0]);
            assertEquals("first", ((Attestation.Identified) dev.attest(tid, p.uid(), p.gid())).workload().name());
            now[0] = PolicyLoader.parse(yaml.formatted("second", "second", p.uid()), "p.yaml");
            assertEquals("second", ((Attestation.Identified) dev.attest(tid, p.uid(), p.gid())).workload().name());
        }
    }
}
