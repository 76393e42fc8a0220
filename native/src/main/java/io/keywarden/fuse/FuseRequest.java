package io.keywarden.fuse;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * One request from the kernel: the header fields, and the body as read. The body is a view of
 * the worker's buffer, valid only until the operation returns: an operation that answers later
 * copies what it needs first.
 */
public final class FuseRequest {
    /** Size of {@code fuse_in_header}. */
    public static final int HEADER = FuseStructs.InHeader.SIZE;

    private final long unique;
    private final int opcode;
    private final long nodeId;
    private final int uid;
    private final int gid;
    private final int pid;
    private final ByteBuffer body;

    /** A request as decoded; public so tests can drive a file system without a mount. */
    public FuseRequest(long unique, int opcode, long nodeId, int uid, int gid, int pid, ByteBuffer body) {
        this.unique = unique;
        this.opcode = opcode;
        this.nodeId = nodeId;
        this.uid = uid;
        this.gid = gid;
        this.pid = pid;
        this.body = body;
    }

    /** Decodes the header at the buffer's position; {@code length} is what read() returned. */
    static FuseRequest decode(ByteBuffer buf, int length) {
        if (length < HEADER) {
            throw new FuseProtocolException("request of " + length + " bytes is shorter than its header");
        }
        FuseStructs.InHeader h = FuseStructs.InHeader.decode(buf, 0);
        if (h.len() != length) {
            throw new FuseProtocolException("request length " + h.len() + " does not match the " + length + " bytes read");
        }
        ByteBuffer body = buf.slice(HEADER, h.len() - HEADER).order(buf.order());
        return new FuseRequest(h.unique(), h.opcode(), h.nodeId(), h.uid(), h.gid(), h.pid(), body);
    }

    public long unique() {
        return unique;
    }

    public int opcode() {
        return opcode;
    }

    public long nodeId() {
        return nodeId;
    }

    /** The caller's fsuid. */
    public int uid() {
        return uid;
    }

    public int gid() {
        return gid;
    }

    /** The calling thread's id (not the process id); 0 for requests the kernel makes itself. */
    public int pid() {
        return pid;
    }

    public ByteBuffer body() {
        return body;
    }

    int bodyInt(int offset) {
        need(offset + 4);
        return body.getInt(offset);
    }

    long bodyLong(int offset) {
        need(offset + 8);
        return body.getLong(offset);
    }

    FuseStructs.OpenIn openIn() {
        need(FuseStructs.OpenIn.SIZE);
        return FuseStructs.OpenIn.decode(body, 0);
    }

    FuseStructs.ReadIn readIn() {
        // READDIR and READ share fuse_read_in; its tail (lock_owner, flags) is there since 7.9.
        need(FuseStructs.ReadIn.SIZE);
        return FuseStructs.ReadIn.decode(body, 0);
    }

    FuseStructs.InitIn initIn() {
        need(FuseStructs.InitIn.MIN_SIZE);
        return FuseStructs.InitIn.decode(body, 0, body.limit());
    }

    /** A NUL-terminated name at the start of the body. */
    String bodyName() {
        int end = 0;
        while (end < body.limit() && body.get(end) != 0) {
            end++;
        }
        if (end == body.limit()) {
            throw new FuseProtocolException(FuseOpcode.name(opcode) + " name is not NUL-terminated");
        }
        byte[] b = new byte[end];
        body.get(0, b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private void need(int bytes) {
        if (body.limit() < bytes) {
            throw new FuseProtocolException(FuseOpcode.name(opcode) + " body has " + body.limit() + " bytes, needs "
                    + bytes);
        }
    }

    @Override
    public String toString() {
        return FuseOpcode.name(opcode) + "#" + unique + " node " + nodeId + " pid " + pid + " uid " + uid;
    }
}
