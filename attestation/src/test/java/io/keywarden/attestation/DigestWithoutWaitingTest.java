package io.keywarden.attestation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.policy.Policy;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * A thread that must not wait (a FUSE worker, the gateway's event loop) is never made to hash an
 * executable: where the policy compares digests and this binary's is not known yet, the answer
 * without waiting is empty (the caller attests on a thread that may block, which computes it);
 * once known, it is answered at once. On the real /proc, attesting this very thread.
 */
class DigestWithoutWaitingTest {
    @Test
    void aDigestNotKnownYetIsNeverComputedOnTheCallersThread() throws Exception {
        int tid = AttestationAllocationTest.ownTid();
        String sha = ExeDigests.hash(Path.of("/proc/self/exe")).orElseThrow();
        try (ProcAttestor proc = new ProcAttestor("/proc", new ExeDigests(), CgroupFs.system())) {
            ProcessInfo p = proc.attest(tid);
            Policy policy = AttestationAllocationTest.onlyMe("unix:uid:" + p.uid(), "unix:sha256:" + sha);
            SelectorAttestor dev = new SelectorAttestor(proc, () -> policy);
            assertFalse(p.exeSha256Known());
            assertEquals(Optional.empty(), dev.attestWithoutWaiting(tid, p.uid(), p.gid()),
                    "the digest is not known: the caller must attest where it may wait");
            Attestation a = dev.attest(tid, p.uid(), p.gid());
            assertEquals("me", assertInstanceOf(Attestation.Identified.class, a).workload().name());
            assertTrue(a.process().exeSha256Known());
            Optional<Attestation> now = dev.attestWithoutWaiting(tid, p.uid(), p.gid());
            assertTrue(now.isPresent(), "known now: answered without waiting");
            assertEquals("me", assertInstanceOf(Attestation.Identified.class, now.get()).workload().name());
        }
    }

    @Test
    void aPolicyWithoutDigestsIsAnsweredAtOnce() throws Exception {
        int tid = AttestationAllocationTest.ownTid();
        try (ProcAttestor proc = new ProcAttestor("/proc", new ExeDigests(), CgroupFs.system())) {
            ProcessInfo p = proc.attest(tid);
            Policy policy = AttestationAllocationTest.onlyMe("unix:uid:" + p.uid());
            SelectorAttestor dev = new SelectorAttestor(proc, () -> policy);
            assertTrue(dev.attestWithoutWaiting(tid, p.uid(), p.gid()).isPresent());
            assertFalse(p.exeSha256Known(), "and nothing was hashed");
        }
    }
}
