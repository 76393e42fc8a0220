package io.keywarden.tests.bench;

import io.keywarden.daemon.audit.Ledger;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Wall time of CLI calls, side by side in one run: {@code java -jar keywarden.jar} against the
 * launcher {@code deploy/bin/keywarden} (the jar's class-data sharing archive, C1 and the serial GC
 * for a short call), against a running {@code keywarden dev} and a 10 MB ledger. Prints figures;
 * asserts nothing about time. Run: {@code ./mvnw -B -q install -DskipTests -DskipITs && ./mvnw -B -Pbench -pl tests
 * verify -Dit.test=CliStartBench}
 */
class CliStartBench {
    static final int RUNS = Integer.getInteger("bench.cliRuns", 15);

    @Test
    void cliStartTimes() throws Exception {
        Requirements.rootAndFuse();
        Path base = Files.createTempDirectory("kw-clibench-");
        Files.setPosixFilePermissions(base, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Path sock = base.resolve("admin/admin.sock");
        // The daemon's own ledger, 10 MB before it starts: shown from the file and by the daemon.
        Path big = base.resolve("audit.jsonl");
        int records = 0;
        try (Ledger l = Ledger.open(big, "node-1", java.time.Clock.systemUTC(), Long.MAX_VALUE, java.time.Duration.ZERO,
                null)) {
            while (Files.size(big) < 10_000_000L) {
                for (int i = 0; i < 100; i++, records++) {
                    l.append("access.granted", Map.of("workload", "w" + records % 50, "key", "openai", "pid",
                            1000 + records % 5000, "uid", 1001, "exe", "/usr/bin/python3", "spiffe_id",
                            "spiffe://example.org/w" + records % 50, "fingerprint", "sha256:0123456789abcdef", "reason",
                            "workload w opened api_key"));
                }
            }
        }
        Path launcher = Path.of("..", "deploy", "bin", "keywarden").toAbsolutePath().normalize();
        Path jar = Daemon.jar().toAbsolutePath().normalize();
        Path jsa = Path.of(jar.toString().replaceFirst("\\.jar$", ".jsa"));
        Process sleeper = new ProcessBuilder("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups", "sleep", "600")
                .start();
        try (Daemon d = Daemon.start(Map.of("SUDO_UID", "1001"), "dev", "--mount", base.resolve("mnt").toString(),
                "--admin-socket", sock.toString(), "--audit", big.toString(), "--listen",
                "127.0.0.1:" + Ports.free())) {
            d.awaitOut("serving KeyFS", 30);
            String[][] commands = {
                {"version"},
                {"status", "--admin-socket", sock.toString()},
                {"why", "--pid", Long.toString(sleeper.pid()), "--admin-socket", sock.toString()},
                {"revoke", "--workload", "uid-1001", "--admin-socket", sock.toString()},
                {"audit", "show", big.toString(), "--workload", "w7"},
                {"audit", "show", "--admin-socket", sock.toString(), "--workload", "w7"},
                {"audit", "verify", big.toString()},
            };
            System.out.printf("== CLI wall time, %d runs each; ledger %.1f MB (%d records); archive %s ==%n", RUNS,
                    Files.size(big) / 1e6, records, Files.exists(jsa) ? jsa + " (" + Files.size(jsa) / 1_000_000 + " MB)"
                            : "MISSING (the launcher runs without one)");
            System.out.printf("%-58s %14s %14s %14s %14s %7s%n", "command", "java -jar p50", "p90 ms", "launcher p50",
                    "p90 ms", "ratio");
            for (String[] c : commands) {
                long[] plain = times(List.of("java", "-jar", jar.toString()), c, Map.of());
                long[] fast = times(List.of(launcher.toString()), c, Map.of("KEYWARDEN_JAR", jar.toString()));
                System.out.printf("%-58s %14d %14d %14d %14d %6.2fx%n", String.join(" ", c).replace(base.toString(), "…")
                        .replace(sock.toString(), "S"), p(plain, 50), p(plain, 90), p(fast, 50), p(fast, 90),
                        (double) p(plain, 50) / p(fast, 50));
            }
            d.stop();
        } finally {
            sleeper.destroy();
            if (io.keywarden.linux.Mounts.at(base.resolve("mnt")).isPresent()) {
                io.keywarden.linux.Mounts.detach(base.resolve("mnt"));
            }
            Proc.run("rm", "-rf", base.toString());
        }
    }

    /** Wall milliseconds of RUNS calls (after one untimed call that warms the page cache). */
    private static long[] times(List<String> prefix, String[] args, Map<String, String> env) throws Exception {
        List<String> cmd = new ArrayList<>(prefix);
        cmd.addAll(List.of(args));
        long[] out = new long[RUNS];
        for (int i = -1; i < RUNS; i++) {
            ProcessBuilder pb = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.DISCARD);
            pb.environment().putAll(env);
            long t0 = System.nanoTime();
            Process p = pb.start();
            p.waitFor();
            long ms = (System.nanoTime() - t0) / 1_000_000;
            if (i >= 0) {
                out[i] = ms;
            }
        }
        Arrays.sort(out);
        return out;
    }

    private static long p(long[] sorted, int pct) {
        return sorted[Math.min(sorted.length - 1, sorted.length * pct / 100)];
    }
}
