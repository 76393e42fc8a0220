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
    static final int OUT_HEADER = 16;
    /** Kernel replies should not cache entries or attributes beyond what the operation says. */
    public static final long NO_CACHE = 0;

    private final FuseSession session;
    private final long unique;
    private final int opcode;
    private final AtomicBoolean done = new AtomicBoolean();

    FuseReply(FuseSession session, long unique, int opcode) {
        this.session = session;
        this.unique = unique;
        this.opcode = opcode;
    }

    public long unique() {
        return unique;
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
            ByteBuffer b = session.device().replyBuffer();
            send(b, OUT_HEADER, -errno);
        }
    }

    public void ok() {
        if (claim()) {
            send(session.device().replyBuffer(), OUT_HEADER, 0);
        }
    }

    /** LOOKUP answer. Validity in nanoseconds: 0 makes the kernel ask again on every path walk. */
    public void entry(long nodeId, FuseAttr attr, long entryValidNanos, long attrValidNanos) {
        if (claim()) {
            ByteBuffer b = session.device().replyBuffer();
            int at = OUT_HEADER;
            b.putLong(at, nodeId);
            b.putLong(at + 8, 0);
            b.putLong(at + 16, entryValidNanos / 1_000_000_000L);
            b.putLong(at + 24, attrValidNanos / 1_000_000_000L);
            b.putInt(at + 32, (int) (entryValidNanos % 1_000_000_000L));
            b.putInt(at + 36, (int) (attrValidNanos % 1_000_000_000L));
            attr.encode(b, at + 40);
            send(b, at + 40 + FuseAttr.SIZE, 0);
        }
    }

    public void attr(FuseAttr attr, long validNanos) {
        if (claim()) {
            ByteBuffer b = session.device().replyBuffer();
            int at = OUT_HEADER;
            b.putLong(at, validNanos / 1_000_000_000L);
            b.putInt(at + 8, (int) (validNanos % 1_000_000_000L));
            b.putInt(at + 12, 0);
            attr.encode(b, at + 16);
            send(b, at + 16 + FuseAttr.SIZE, 0);
        }
    }

    /** OPEN/OPENDIR answer: a handle and FOPEN_* flags. False when the request was already answered (interrupted). */
    public boolean open(long fh, int openFlags) {
        if (claim()) {
            ByteBuffer b = session.device().replyBuffer();
            b.putLong(OUT_HEADER, fh);
            b.putInt(OUT_HEADER + 8, openFlags);
            b.putInt(OUT_HEADER + 12, 0);
            send(b, OUT_HEADER + 16, 0);
            return true;
        }
        return false;
    }

    /** READ answer: up to {@code size} bytes of {@code content} from {@code offset}; empty at EOF. */
    public void data(byte[] content, long offset, int size) {
        if (claim()) {
            ByteBuffer b = session.device().replyBuffer();
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
            ByteBuffer b = session.device().replyBuffer();
            int n = content.copyTo(offset, b, OUT_HEADER, Math.max(0, Math.min(size, b.capacity() - OUT_HEADER)));
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
            ByteBuffer b = session.device().replyBuffer();
            int n = enc.remaining();
            b.put(OUT_HEADER, enc, 0, n);
            send(b, OUT_HEADER + n, 0);
        }
    }

    public void statfs(long files, int nameLen) {
        if (claim()) {
            ByteBuffer b = session.device().replyBuffer();
            for (int i = 0; i < 80; i += 8) {
                b.putLong(OUT_HEADER + i, 0);
            }
            b.putLong(OUT_HEADER + 24, files);
            b.putInt(OUT_HEADER + 40, 4096);
            b.putInt(OUT_HEADER + 44, nameLen);
            b.putInt(OUT_HEADER + 48, 4096);
            send(b, OUT_HEADER + 80, 0);
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
        b.putInt(0, length);
        b.putInt(4, error);
        b.putLong(8, unique);
        session.replied(this);
        try {
            session.device().write(b, length);
        } catch (NativeException e) {
            LOG.log(System.Logger.Level.WARNING, "reply to " + FuseOpcode.name(opcode) + "#" + unique + " failed: "
                    + e.getMessage());
        }
    }
}
