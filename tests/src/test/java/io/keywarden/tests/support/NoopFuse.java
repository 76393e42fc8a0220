package io.keywarden.tests.support;

import io.keywarden.fuse.FuseAttr;
import io.keywarden.fuse.FuseOperations;
import io.keywarden.fuse.FuseReply;
import io.keywarden.fuse.FuseRequest;
import io.keywarden.fuse.FuseSession;
import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.ProcessGoneException;
import io.keywarden.linux.Errno;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A FUSE file system that does no work: fixed content, no attestation, no decision. The floor under
 * KeyFS in the benchmarks. {@code f} is served as KeyFS serves a key in its first seconds (direct
 * I/O: OPEN, READ, READ at EOF); {@code c} as it serves one from the page cache (its size in the
 * attributes, {@code FOPEN_KEEP_CACHE}: OPEN only once the pages are filled). Requests to {@code c}
 * are counted, so a benchmark can show how many round trips a loop cost. {@code k/c} is {@code c} one
 * directory down, as deep as KeyFS's {@code openai/api_key} (each name the kernel walks costs it).
 * With an attestor, every OPEN first attests the caller as KeyFS does (from the attestor's cache,
 * the tracer not read), refusing one that is gone: the floor of a file system that checks each
 * open's process, without KeyFS's decision and handles.
 */
public final class NoopFuse implements FuseOperations {
    private static final long VALID = 5_000_000_000L;
    private static final long DIRECT = 2;
    private static final long CACHED = 3;
    private static final long DIRECTORY = 4;

    private final byte[] content;
    private final ProcAttestor attestor;
    private final AtomicLong cachedRequests = new AtomicLong();

    public NoopFuse(byte[] content) {
        this(content, null);
    }

    /** {@code attestor}: each OPEN attests its caller first (null: no attestation). */
    public NoopFuse(byte[] content, ProcAttestor attestor) {
        this.content = content.clone();
        this.attestor = attestor;
    }

    /** OPEN and READ requests to {@code c} so far. */
    public long cachedRequests() {
        return cachedRequests.get();
    }

    private FuseAttr attrOf(long node) {
        return node == 1 || node == DIRECTORY ? FuseAttr.directory(node, 0555, 0)
                : FuseAttr.file(node, node == CACHED ? content.length : 0, 0444, 0);
    }

    @Override
    public void lookup(FuseRequest r, long parent, String name, FuseReply reply) {
        long node = parent == DIRECTORY ? (name.equals("c") ? CACHED : 0)
                : parent != 1 ? 0 : name.equals("f") ? DIRECT : name.equals("c") ? CACHED : name.equals("k") ? DIRECTORY : 0;
        if (node == 0) {
            reply.error(Errno.ENOENT);
        } else {
            reply.entry(node, attrOf(node), VALID, VALID);
        }
    }

    @Override
    public void getattr(FuseRequest r, long node, FuseReply reply) {
        reply.attr(attrOf(node), VALID);
    }

    @Override
    public void open(FuseRequest r, long node, int flags, FuseReply reply) {
        if (node == CACHED) {
            cachedRequests.incrementAndGet();
        }
        if (attestor != null) {
            try {
                attestor.attestIgnoringTracer(r.pid(), r.uid(), r.gid());
            } catch (ProcessGoneException e) {
                reply.error(Errno.EACCES);
                return;
            }
        }
        reply.open(7, node == CACHED ? FuseSession.FOPEN_KEEP_CACHE | FuseSession.FOPEN_NOFLUSH
                : FuseSession.FOPEN_DIRECT_IO | FuseSession.FOPEN_NOFLUSH);
    }

    @Override
    public void read(FuseRequest r, long node, long fh, long offset, int size, FuseReply reply) {
        if (node == CACHED) {
            cachedRequests.incrementAndGet();
        }
        reply.data(content, offset, size);
    }
}
