package io.keywarden.tests.bench;

import io.keywarden.fuse.FuseSession;
import io.keywarden.tests.support.KwRead;
import io.keywarden.tests.support.Requirements;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The floor under KeyFS: the same loop against a FUSE file system that does no work at all
 * (fixed content, no attestation), so the benchmark can tell the kernel round trips from
 * keywarden's own cost. Two files: {@code f} as KeyFS serves a key in its first seconds (direct
 * I/O: OPEN, READ, READ at EOF) and {@code c} as it serves one from the page cache (OPEN only,
 * {@code FOPEN_KEEP_CACHE}), with tmpfs beside them. {@code -Dfloor.workers=N} sets the worker count.
 */
class FloorBench {
    @Test
    void emptyFileSystem() throws Exception {
        Requirements.rootAndFuse();
        byte[] content = "sk-alice-0123456789012345678901234567890123456789ab".getBytes(StandardCharsets.US_ASCII);
        io.keywarden.tests.support.NoopFuse ops = new io.keywarden.tests.support.NoopFuse(content);
        Path mnt = Files.createTempDirectory("kw-floor-");
        FuseSession.Options defaults = FuseSession.Options.defaults("keywarden");
        int workers = Integer.getInteger("floor.workers", defaults.workers());
        try (io.keywarden.tests.support.FuseUringSwitch uring = io.keywarden.tests.support.FuseUringSwitch.fromProperty();
             FuseSession s = FuseSession.mount(mnt, ops, defaults.withWorkers(workers))) {
            Path f = mnt.resolve("f");
            Path c = mnt.resolve("c");
            Path tmp = Files.createTempFile(Path.of("/dev/shm"), "kw-floor-", "");
            try {
                Files.write(tmp, content);
                Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
                KwRead.run(1001, null, f, 1, 2000, "sk-alice-", content.length);
                KwRead.run(1001, null, c, 1, 2000, "sk-alice-", content.length);
                System.out.printf("== FUSE floor (no-op file system, %d workers, requests through %s), medians / p99 µs ==%n",
                        workers, s.servesOverIoUring() ? "io_uring" : "/dev/fuse reads");
                System.out.printf("%-10s %22s %22s %22s %12s%n", "readers", "tmpfs", "3 round trips (f)",
                        "1 round trip (c)", "c / tmpfs");
                for (int readers : new int[] {1, 8}) {
                    int n = readers == 1 ? 20_000 : 2500;
                    KwRead.Stats t = KwRead.run(1001, null, tmp, readers, n, "sk-alice-", content.length);
                    KwRead.Stats three = KwRead.run(1001, null, f, readers, n, "sk-alice-", content.length);
                    long before = ops.cachedRequests();
                    KwRead.Stats one = KwRead.run(1001, null, c, readers, n, "sk-alice-", content.length);
                    long perOpen100 = Math.round(100.0 * (ops.cachedRequests() - before) / ((long) readers * n));
                    System.out.printf("%-10d %10.1f / %9.1f %10.1f / %9.1f %10.1f / %9.1f %11.1fx  (c: %d.%02d OPEN+READ a loop)%n",
                            readers, t.medianNs() / 1e3, t.p99Ns() / 1e3, three.medianNs() / 1e3, three.p99Ns() / 1e3,
                            one.medianNs() / 1e3, one.p99Ns() / 1e3, one.medianNs() / (double) t.medianNs(),
                            perOpen100 / 100, perOpen100 % 100);
                }
            } finally {
                Files.deleteIfExists(tmp);
            }
        } finally {
            Files.deleteIfExists(mnt);
        }
    }
}
