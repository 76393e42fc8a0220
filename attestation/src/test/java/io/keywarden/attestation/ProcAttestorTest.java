package io.keywarden.attestation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ProcAttestorTest {
    @TempDir
    Path proc;

    /** Writes a fake /proc/PID the way the kernel lays it out. */
    void process(int pid, int tgid, int uid, long start, String exe) throws Exception {
        Path d = proc.resolve(Integer.toString(pid));
        Files.createDirectories(d);
        Files.writeString(d.resolve("status"), "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t" + tgid
                + "\nNgid:\t0\nPid:\t" + pid + "\nPPid:\t1\nUid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid
                + "\nGid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid + "\n");
        // The command name may hold spaces and parentheses: parsing starts after the last ')'.
        Files.writeString(d.resolve("stat"), pid + " (py (x) 3) S 1 " + pid + " " + pid
                + " 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 " + start + " 1000 100 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
        Files.writeString(d.resolve("cgroup"), "0::/system.slice/docker-" + "ab".repeat(32) + ".scope\n");
        Files.deleteIfExists(d.resolve("exe"));
        Files.createSymbolicLink(d.resolve("exe"), Path.of(exe));
    }

    @Test
    void readsTgidUidExeCgroupAndStartTime() throws Exception {
        process(500, 500, 1001, 7777, "/usr/bin/python3");
        process(501, 500, 1001, 7790, "/usr/bin/python3");
        ProcessInfo p = new ProcAttestor(proc.toString(), new ExeDigests(), (c, path) -> true).attest(501);
        assertEquals(500, p.pid(), "a thread id resolves to its process");
        assertEquals(1001, p.uid());
        assertEquals(7777, p.startTime());
        assertEquals(Optional.of("/usr/bin/python3"), p.exe());
        assertTrue(p.exeIs("/usr/bin/python3"), "the file identity of the link's target");
        assertEquals(Optional.of("ab".repeat(32)), p.containerId());
    }

    @Test
    void aReusedPidIsNotTheAttestedProcess() throws Exception {
        Policy policy = PolicyLoader.parse("""
                keys: {openai: {}}
                workloads:
                  - {name: alice, spiffeId: "spiffe://t/alice", selectors: ["unix:uid:1001"], keys: [openai]}
                  - {name: bob, spiffeId: "spiffe://t/bob", selectors: ["unix:uid:1002"], keys: [openai]}
                """, "p.yaml");
        ProcAttestor attestor = new ProcAttestor(proc.toString(), new ExeDigests(), (c, path) -> true);
        SelectorAttestor dev = new SelectorAttestor(attestor, () -> policy);
        process(600, 600, 1001, 1000, "/usr/bin/python3");
        Attestation first = dev.attest(600, 1001, 1001);
        assertEquals("alice", assertInstanceOf(Attestation.Identified.class, first).workload().name());
        assertSame(first.process(), dev.attest(600, 1001, 1001).process(), "cached while nothing changed");

        // alice's process exits; the kernel gives pid 600 to a new process of bob.
        process(600, 600, 1002, 2000, "/usr/bin/python3");
        assertFalse(dev.isAlive(first.process()), "the old process is gone although its pid lives");
        Attestation second = dev.attest(600, 1002, 1002);
        assertEquals("bob", assertInstanceOf(Attestation.Identified.class, second).workload().name());
        assertNotSame(first.process(), second.process());
    }

    @Test
    void execveOrSetuidInvalidatesTheCache() throws Exception {
        ProcAttestor attestor = new ProcAttestor(proc.toString(), new ExeDigests(), (c, path) -> true);
        process(700, 700, 1001, 1000, "/usr/bin/python3");
        ProcessInfo p = attestor.attest(700, 1001, 1001);
        process(700, 700, 1001, 1000, "/usr/bin/curl");
        ProcessInfo q = attestor.attest(700, 1001, 1001);
        assertEquals(Optional.of("/usr/bin/curl"), q.exe(), "an execve is seen although pid and start time are the same");
        process(700, 700, 4242, 1000, "/usr/bin/curl");
        assertEquals(4242, attestor.attest(700, 4242, 4242).uid(), "a setuid is seen");
        assertNotSame(p, q);
    }

    @Test
    void goneProcessIsReported() {
        ProcAttestor attestor = new ProcAttestor(proc.toString(), new ExeDigests(), (c, path) -> true);
        ProcessGoneException e = assertThrows(ProcessGoneException.class, () -> attestor.attest(999));
        assertTrue(e.getMessage().contains("999"));
    }

    @Test
    void digestOfTheRealExecutableIsComputedOnceAndCached() throws Exception {
        ExeDigests digests = new ExeDigests();
        ProcAttestor real = new ProcAttestor("/proc", digests, CgroupFs.system());
        int self = (int) ProcessHandle.current().pid();
        ProcessInfo p = real.attest(self);
        String d = p.exeSha256().orElseThrow();
        assertTrue(d.matches("[0-9a-f]{64}"));
        assertEquals(ExeDigests.hash(Path.of(p.exe().orElseThrow())).orElseThrow(), d);
        assertEquals(d, real.attest(self).exeSha256().orElseThrow());
    }
}
