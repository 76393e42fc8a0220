package io.keywarden.tests.enforcement;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.linux.Pidfd;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The attestation cache against what a workload's own uid can do to it, on the real /proc: a
 * process that ends and whose pid goes to another process of the same uid running the same
 * binary (the pid-reuse lottery, won on purpose: {@link io.keywarden.tests.support.PidReuse}), and a process that
 * execs another program. Each time the cache must attest afresh, both with thread descriptors
 * (pidfds, how the daemon runs on Linux 6.9 and later) and with start times alone.
 */
class AttestationCacheIT {
    @ParameterizedTest(name = "thread descriptors {0}")
    @ValueSource(booleans = {true, false})
    void aPidGivenToAnotherProcessOfTheSameUidAndBinaryIsAttestedAfresh(boolean descriptors) throws Exception {
        Requirements.root();
        if (descriptors) {
            assertTrue(Pidfd.threadsSupported(), "this kernel (6.9 or later expected here) has no thread pidfds");
        }
        untilPlaced("pid", () -> pidGivenToAnother(descriptors));
    }

    /** A scenario that hands a freed number to a process of its own; false when the machine took it first. */
    private interface Placement {
        boolean placed() throws Exception;
    }

    /**
     * Another process of the machine may take the freed number before the test can (a loaded runner
     * forks all the time): then the scenario starts again, five times at most.
     */
    private static void untilPlaced(String what, Placement scenario) throws Exception {
        for (int attempt = 1; attempt <= 5; attempt++) {
            if (scenario.placed()) {
                return;
            }
            System.out.println(what + " reuse: the freed number went to another process of the machine; again ("
                    + attempt + ")");
        }
        throw new AssertionError("five freed " + what + "s were all taken by other processes first");
    }

    /** False when the freed pid was taken by a process of the machine before it could be given. */
    private static boolean pidGivenToAnother(boolean descriptors) throws Exception {
        Process victim = new ProcessBuilder("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups",
                "/bin/sleep", "60").start();
        int pid = (int) victim.pid();
        Optional<ProcessHandle> placed = Optional.empty();
        try (ProcAttestor attestor = ProcAttestor.system(descriptors)) {
            assertEquals(descriptors, attestor.usesThreadDescriptors());
            Await.until(Duration.ofSeconds(10), () -> Files.readSymbolicLink(Path.of("/proc/" + pid + "/exe"))
                    .toString().endsWith("sleep"), () -> "the victim never ran sleep");
            ProcessInfo first = attestor.attestIgnoringTracer(pid, 1001, 1001);
            assertSame(first, attestor.attestIgnoringTracer(pid, 1001, 1001), "a second open is served from the cache");
            victim.destroyForcibly();
            victim.waitFor();
            Proc.Result r = io.keywarden.tests.support.PidReuse.giveTo(Integer.toString(pid), 1001);
            if (!r.ok() && Files.exists(Path.of("/proc/" + pid))) {
                return false;
            }
            assertTrue(r.ok(), "could not give pid " + pid + " to another process of uid 1001: " + r.out() + r.err());
            placed = ProcessHandle.of(pid);
            Await.until(Duration.ofSeconds(10), () -> Files.readSymbolicLink(Path.of("/proc/" + pid + "/exe"))
                    .toString().endsWith("sleep"), () -> "the new process never ran sleep");
            ProcessInfo second = attestor.attestIgnoringTracer(pid, 1001, 1001);
            assertNotSame(first, second, "the cache served the ended process's attestation to the new one");
            assertNotEquals(first.startTime(), second.startTime());
            assertSame(second, attestor.attestIgnoringTracer(pid, 1001, 1001), "the new process is cached in turn");
            return true;
        } finally {
            victim.destroyForcibly();
            placed.ifPresent(ProcessHandle::destroyForcibly);
        }
    }

    /**
     * A reader thread that is not its process's leader (kwread's, Node's pool, a Python worker): when
     * it ends and its number goes to another process of the same uid, the cache must not serve that
     * process the first one's attestation (with descriptors the entry holds the ended thread's own
     * /proc directory, through which nothing resolves any more).
     */
    @ParameterizedTest(name = "thread descriptors {0}")
    @ValueSource(booleans = {true, false})
    void aThreadsNumberGivenToAnotherProcessIsAttestedAfresh(boolean descriptors) throws Exception {
        Requirements.root();
        untilPlaced("tid", () -> threadNumberGivenToAnother(descriptors));
    }

    private static boolean threadNumberGivenToAnother(boolean descriptors) throws Exception {
        Process p = new ProcessBuilder("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "/usr/bin/python3", "-c",
                "import sys, threading\n"
                        + "def worker():\n    print(threading.get_native_id(), flush=True)\n    sys.stdin.readline()\n"
                        + "t = threading.Thread(target=worker)\nt.start()\nt.join()\nprint('ended', flush=True)\n"
                        + "sys.stdin.readline()\n")
                .directory(new java.io.File("/")).redirectErrorStream(true).start();
        Optional<ProcessHandle> placed = Optional.empty();
        try (ProcAttestor attestor = ProcAttestor.system(descriptors);
             BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
             Writer in = new java.io.OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8)) {
            int tid = Integer.parseInt(out.readLine().trim());
            assertNotEquals((int) p.pid(), tid, "a thread other than the leader");
            ProcessInfo first = attestor.attestIgnoringTracer(tid, 1001, 1001);
            assertEquals((int) p.pid(), first.pid(), "the thread's process");
            assertSame(first, attestor.attestIgnoringTracer(tid, 1001, 1001), "a second open is served from the cache");
            in.write("end the thread\n");
            in.flush();
            assertEquals("ended", out.readLine());
            Proc.Result r = io.keywarden.tests.support.PidReuse.giveTo(Integer.toString(tid), 1001);
            if (!r.ok() && Files.exists(Path.of("/proc/" + tid))) {
                return false;
            }
            assertTrue(r.ok(), "could not give number " + tid + " to another process of uid 1001: " + r.out() + r.err());
            placed = ProcessHandle.of(tid);
            Await.until(Duration.ofSeconds(10), () -> Files.readSymbolicLink(Path.of("/proc/" + tid + "/exe"))
                    .toString().endsWith("sleep"), () -> "the new process never ran sleep");
            ProcessInfo second = attestor.attestIgnoringTracer(tid, 1001, 1001);
            assertNotSame(first, second, "the cache served the ended thread's attestation to another process");
            assertEquals(tid, second.pid(), "the number now leads a process of its own");
            assertTrue(second.exe().orElseThrow().endsWith("sleep"), second.exe().toString());
            return true;
        } finally {
            p.destroyForcibly();
            placed.ifPresent(ProcessHandle::destroyForcibly);
        }
    }

    @ParameterizedTest(name = "thread descriptors {0}")
    @ValueSource(booleans = {true, false})
    void aProcessThatExecsAnotherProgramIsAttestedAfresh(boolean descriptors) throws Exception {
        Requirements.root();
        Process p = new ProcessBuilder("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "/usr/bin/python3", "-c",
                "import os, sys\nprint('ready', flush=True)\nsys.stdin.readline()\nos.execv('/bin/sleep', ['sleep', '60'])")
                .directory(new java.io.File("/")).redirectErrorStream(true).start();
        int pid = (int) p.pid();
        try (ProcAttestor attestor = ProcAttestor.system(descriptors);
             BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
             Writer in = new java.io.OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8)) {
            assertEquals("ready", out.readLine());
            ProcessInfo before = attestor.attestIgnoringTracer(pid, 1001, 1001);
            assertTrue(before.exe().orElseThrow().contains("python"), before.exe().toString());
            assertSame(before, attestor.attestIgnoringTracer(pid, 1001, 1001));
            in.write("go\n");
            in.flush();
            Await.until(Duration.ofSeconds(10), () -> Files.readSymbolicLink(Path.of("/proc/" + pid + "/exe"))
                    .toString().endsWith("sleep"), () -> "the process never exec'd sleep");
            ProcessInfo after = attestor.attestIgnoringTracer(pid, 1001, 1001);
            assertNotSame(before, after);
            assertTrue(after.exe().orElseThrow().endsWith("sleep"), after.exe().toString());
            assertEquals(before.startTime(), after.startTime(), "an exec keeps the process (and its start time)");
        } finally {
            p.destroyForcibly();
        }
    }
}
