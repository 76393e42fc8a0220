package io.keywarden.tests.bench;

import io.keywarden.attestation.CgroupFs;
import io.keywarden.attestation.ExeDigests;
import io.keywarden.linux.FileIdentity;
import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.attestation.spire.DelegatedIdentityClient;
import io.keywarden.tests.spire.FakeSpireAgent;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Attestation latency per open: cold (hash the executable), uncached, warm (cached), and a SPIRE round trip. */
class AttestationBench {
    interface Op {
        void run() throws Exception;
    }

    static String measure(int n, Op op) throws Exception {
        for (int i = 0; i < Math.min(n, 200); i++) {
            op.run();
        }
        long[] t = new long[n];
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            op.run();
            t[i] = System.nanoTime() - t0;
        }
        Arrays.sort(t);
        return String.format("median %8.1f µs   p99 %8.1f µs", t[n / 2] / 1e3, t[(int) (n * 0.99)] / 1e3);
    }

    @Test
    void attestation() throws Exception {
        Requirements.root();
        Process sleeper = new ProcessBuilder("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "sleep", "120").start();
        Path dir = Files.createTempDirectory("kw-attest-bench-");
        try (FakeSpireAgent agent = new FakeSpireAgent(dir.resolve("admin.sock"), "example.org").register("/a", 1001).start();
             DelegatedIdentityClient client = new DelegatedIdentityClient(dir.resolve("admin.sock"), Duration.ofSeconds(2))) {
            Thread.sleep(100);
            int pid = (int) sleeper.pid();
            ProcAttestor warm = ProcAttestor.system();
            long exeSize = Files.size(Path.of("/usr/bin/sleep"));
            System.out.println("== attestation latency (target: a `sleep` process of uid 1001; exe " + exeSize + " bytes) ==");
            System.out.println("cold  (/proc + sha256 of the exe): " + measure(2000, () -> {
                ProcessInfo p = new ProcAttestor("/proc", new ExeDigests(), CgroupFs.system()).attest(pid);
                p.exeSha256().orElseThrow();
            }));
            System.out.println("uncached (/proc, no digest):       " + measure(5000, () -> warm.attest(pid)));
            System.out.println("warm  (per-thread cache, per open): " + measure(20000, () -> warm.attest(pid, 1001, 1001)));
            System.out.println("warm, tracer not read (uid only):   " + measure(20000,
                    () -> warm.attestIgnoringTracer(pid, 1001, 1001)) + "   (thread descriptors: "
                    + warm.usesThreadDescriptors() + ")");
            try (ProcAttestor byStart = ProcAttestor.system(false)) {
                System.out.println("warm, tracer not read, start time:  " + measure(20000,
                        () -> byStart.attestIgnoringTracer(pid, 1001, 1001)));
            }
            System.out.println("warm, tracer not read (again):      " + measure(20000,
                    () -> warm.attestIgnoringTracer(pid, 1001, 1001)));
            System.out.println("SPIRE FetchJWTSVIDs round trip:    " + measure(2000, () -> client.fetchJwtSvids(pid, List.of("vault"))));
            Path big = Path.of(System.getProperty("java.home"), "lib", "modules");
            long t0 = System.nanoTime();
            new ExeDigests().digest(big.toString(), FileIdentity.of(big.toString()).orElseThrow()).orElseThrow();
            double secs = (System.nanoTime() - t0) / 1e9;
            System.out.printf("sha256 throughput: %.0f MB/s (%d MB file, once per binary thanks to the cache)%n",
                    Files.size(big) / 1e6 / secs, Files.size(big) / 1_000_000);
        } finally {
            sleeper.destroyForcibly();
            Files.deleteIfExists(dir.resolve("admin.sock"));
            Files.deleteIfExists(dir);
        }
    }
}
