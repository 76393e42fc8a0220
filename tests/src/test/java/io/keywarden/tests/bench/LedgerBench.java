package io.keywarden.tests.bench;

import io.keywarden.daemon.audit.Ledger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Ledger throughput: records/s with a flush per record, fsync bounded to once a second or every record. */
class LedgerBench {
    @Test
    void throughput() throws Exception {
        Path dir = Files.createTempDirectory(Path.of("/var/tmp"), "kw-ledger-bench-");
        Map<String, Object> access = Map.of("pid", 4242, "uid", 1001, "gid", 1001, "exe", "/usr/bin/python3.11",
                "spiffe_id", "spiffe://example.org/ns/agents/sa/reviewer", "key", "openai",
                "fingerprint", "sha256:0123456789abcdef", "reason", "workload reviewer opened api_key");
        System.out.println("== audit ledger: access.granted records on " + dir + " (disk) ==");
        for (Duration fsync : new Duration[] {Duration.ofSeconds(1), Duration.ZERO}) {
            int n = fsync.isZero() ? 2_000 : 50_000;
            try (Ledger l = Ledger.open(dir.resolve("audit-" + fsync.toMillis() + ".jsonl"), "bench", Clock.systemUTC(),
                    Long.MAX_VALUE, fsync, null)) {
                for (int i = 0; i < 2_000; i++) {
                    l.append("access.granted", access);
                }
                long t0 = System.nanoTime();
                for (int i = 0; i < n; i++) {
                    l.append("access.granted", access);
                }
                double s = (System.nanoTime() - t0) / 1e9;
                System.out.printf("fsync %-14s %8.0f records/s, %6.1f µs per record (the cost added to a recorded open)%n",
                        fsync.isZero() ? "every record:" : "at most 1/s:", n / s, s * 1e6 / n);
            }
        }
        try (var files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.delete(f);
            }
        }
        Files.delete(dir);
    }
}
