package io.keywarden.tests.bench;

import io.keywarden.fuse.FuseAttr;
import io.keywarden.fuse.FuseOperations;
import io.keywarden.fuse.FuseReply;
import io.keywarden.fuse.FuseRequest;
import io.keywarden.fuse.FuseSession;
import io.keywarden.linux.Errno;
import io.keywarden.tests.support.KwRead;
import io.keywarden.tests.support.Requirements;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * The floor under KeyFS: the same loop against a FUSE file system that does no work at all
 * (fixed content, no attestation), so the benchmark can tell the kernel round trips from
 * keywarden's own cost. {@code -Dfloor.workers=N} sets the worker count.
 */
class FloorBench {
    private static final long VALID = 5_000_000_000L;

    @Test
    void emptyFileSystem() throws Exception {
        Requirements.rootAndFuse();
        byte[] content = "sk-alice-0123456789012345678901234567890123456789ab".getBytes(StandardCharsets.US_ASCII);
        FuseOperations ops = new FuseOperations() {
            @Override
            public void lookup(FuseRequest r, long parent, String name, FuseReply reply) {
                if (parent == 1 && name.equals("f")) {
                    reply.entry(2, FuseAttr.file(2, 0, 0444, 0), VALID, VALID);
                } else {
                    reply.error(Errno.ENOENT);
                }
            }

            @Override
            public void getattr(FuseRequest r, long node, FuseReply reply) {
                reply.attr(node == 1 ? FuseAttr.directory(1, 0555, 0) : FuseAttr.file(2, 0, 0444, 0), VALID);
            }

            @Override
            public void open(FuseRequest r, long node, int flags, FuseReply reply) {
                reply.open(7, FuseSession.FOPEN_DIRECT_IO | FuseSession.FOPEN_NOFLUSH);
            }

            @Override
            public void read(FuseRequest r, long node, long fh, long offset, int size, FuseReply reply) {
                reply.data(content, offset, size);
            }
        };
        Path mnt = Files.createTempDirectory("kw-floor-");
        FuseSession.Options defaults = FuseSession.Options.defaults("keywarden");
        int workers = Integer.getInteger("floor.workers", defaults.workers());
        try (io.keywarden.tests.support.FuseUringSwitch uring = io.keywarden.tests.support.FuseUringSwitch.fromProperty();
             FuseSession s = FuseSession.mount(mnt, ops, defaults.withWorkers(workers))) {
            Path f = mnt.resolve("f");
            KwRead.run(1001, null, f, 1, 2000, "sk-alice-", content.length);
            KwRead.Stats one = KwRead.run(1001, null, f, 1, 20_000, "sk-alice-", content.length);
            KwRead.Stats eight = KwRead.run(1001, null, f, 8, 2500, "sk-alice-", content.length);
            System.out.printf("== FUSE floor (no-op file system, %d workers, requests through %s) ==%n", workers,
                    s.servesOverIoUring() ? "io_uring" : "/dev/fuse reads");
            System.out.printf("1 reader:  median %.1f µs, p99 %.1f µs%n", one.medianNs() / 1e3, one.p99Ns() / 1e3);
            System.out.printf("8 readers: median %.1f µs, p99 %.1f µs%n", eight.medianNs() / 1e3, eight.p99Ns() / 1e3);
        } finally {
            Files.deleteIfExists(mnt);
        }
    }
}
