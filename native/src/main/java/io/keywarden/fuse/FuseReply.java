package io.keywarden.fuse;

import io.keywarden.linux.NativeException;
import io.keywarden.linux.Secret;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The answer to one request. Exactly one answer is sent, from any thread, at any time: an
 * operation may keep its reply and answer later (e.g. an OPEN waiting for a key to be issued).
 * Later answers are ignored, so an interrupted request answered EINTR stays answered.
 */
public final class FuseReply {
    private static final System.Logger LOG = System.getLogger(FuseReply.class.getName());
    static final int OUT_HEADER = FuseStructs.OutHeader.SIZE;
    /** Kernel replies should not cache entries or attributes beyond what the operation says. */
    public static final long NO_CACHE = 0;

    private final ReplySink sink;
    private final long unique;
    private final int opcode;
    private final AtomicBoolean done = new AtomicBoolean();
    /**
     * Set (before it is put there) when the session keeps this reply in its pending table because
     * it was not answered while its request was handled: only then does answering remove it, so an
     * open answered at once costs no table removal (nor a boxed key).
     */
    volatile boolean pending;

    /** A reply to request {@code unique} of {@code opcode}, written to {@code sink}. */
    public FuseReply(ReplySink sink, long unique, int opcode) {
        this.sink = sink;
        this.unique = unique;
        this.opcode = opcode;
    }

    public long unique() {
        return unique;
    }

    public int opcode() {
        return opcode;
    }

    public boolean isDone() {
        return done.get();
    }

    /** Answers with {@code -errno}; {@code errno} is positive (e.g. {@link io.keywarden.linux.Errno#EACCES}). */
    public void error(int errno) {
        if (errno <= 0) {
            throw new IllegalArgumentException("errno must be positive, got " + errno);
        }
        if (claim()) {
            ByteBuffer b = sink.buffer();
            send(b, OUT_HEADER, -errno);
        }
    }

    public void ok() {
        if (claim()) {
            send(sink.buffer(), OUT_HEADER, 0);
        }
    }

    /** LOOKUP answer. Validity in nanoseconds: 0 makes the kernel ask again on every path walk. */
    public void entry(long nodeId, FuseAttr attr, long entryValidNanos, long attrValidNanos) {
        entry(nodeId, 0, attr, entryValidNanos, attrValidNanos);
    }

    /**
     * LOOKUP answer with the node's {@code generation}: a node id answered again with another
     * generation is a new inode to the kernel (it drops the one it held under that id).
     */
    public void entry(long nodeId, long generation, FuseAttr attr, long entryValidNanos, long attrValidNanos) {
        if (claim()) {
            ByteBuffer b = sink.buffer();
            FuseStructs.EntryOut.of(nodeId, generation, attr, entryValidNanos, attrValidNanos).encode(b, OUT_HEADER);
            send(b, OUT_HEADER + FuseStructs.EntryOut.SIZE, 0);
        }
    }

    public void attr(FuseAttr attr, long validNanos) {
        if (claim()) {
            ByteBuffer b = sink.buffer();
            FuseStructs.AttrOut.of(attr, validNanos).encode(b, OUT_HEADER);
            send(b, OUT_HEADER + FuseStructs.AttrOut.SIZE, 0);
        }
    }

    /** OPEN/OPENDIR answer: a handle and FOPEN_* flags. False when the request was already answered (interrupted). */
    public boolean open(long fh, int openFlags) {
        if (claim()) {
            ByteBuffer b = sink.buffer();
            new FuseStructs.OpenOut(fh, openFlags, 0).encode(b, OUT_HEADER);
            send(b, OUT_HEADER + FuseStructs.OpenOut.SIZE, 0);
            return true;
        }
        return false;
    }

    /** READ answer: up to {@code size} bytes of {@code content} from {@code offset}; empty at EOF. */
    public void data(byte[] content, long offset, int size) {
        if (claim()) {
            ByteBuffer b = sink.buffer();
            int from = (int) Math.min(Math.max(offset, 0), content.length);
            int n = Math.max(0, Math.min(Math.min(size, content.length - from), b.capacity() - OUT_HEADER));
            b.put(OUT_HEADER, content, from, n);
            send(b, OUT_HEADER + n, 0);
        }
    }

    /**
     * READ answer from a secret: copied into the reply buffer memory to memory, and the buffer's
     * copy is wiped once the kernel has it.
     */
    public void data(Secret content, long offset, int size) {
        if (claim()) {
            ByteBuffer b = sink.buffer();
            int n;
            try {
                n = content.copyTo(offset, b, OUT_HEADER, Math.max(0, Math.min(size, b.capacity() - OUT_HEADER)));
            } catch (IllegalStateException wiped) {
                // Wiped between the handler's look and this copy (a key revoked meanwhile): stale.
                send(b, OUT_HEADER, -io.keywarden.linux.Errno.ESTALE);
                return;
            }
            try {
                send(b, OUT_HEADER + n, 0);
            } finally {
                for (int i = 0; i < n; i++) {
                    b.put(OUT_HEADER + i, (byte) 0);
                }
            }
        }
    }

    public void dirents(DirentList list, long offset, int size) {
        if (claim()) {
            ByteBuffer enc = list.encode(offset, Math.min(size, FuseDevice.MAX_WRITE));
            ByteBuffer b = sink.buffer();
            int n = enc.remaining();
            b.put(OUT_HEADER, enc, 0, n);
            send(b, OUT_HEADER + n, 0);
        }
    }

    public void statfs(long files, int nameLen) {
        if (claim()) {
            ByteBuffer b = sink.buffer();
            new FuseStructs.StatfsOut(0, 0, 0, files, 0, 4096, nameLen, 4096).encode(b, OUT_HEADER);
            send(b, OUT_HEADER + FuseStructs.StatfsOut.SIZE, 0);
        }
    }

    void raw(ByteBuffer payloadFilled, int payloadLength) {
        if (claim()) {
            send(payloadFilled, OUT_HEADER + payloadLength, 0);
        }
    }

    private boolean claim() {
        return done.compareAndSet(false, true);
    }

    private void send(ByteBuffer b, int length, int error) {
        new FuseStructs.OutHeader(length, error, unique).encode(b, 0);
        try {
            sink.send(this, b, length);
        } catch (NativeException e) {
            LOG.log(System.Logger.Level.WARNING, "reply to " + FuseOpcode.name(opcode) + "#" + unique + " failed: "
                    + e.getMessage());
        }
    }
}
