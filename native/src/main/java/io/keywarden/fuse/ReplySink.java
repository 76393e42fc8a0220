package io.keywarden.fuse;

import java.nio.ByteBuffer;

/**
 * Where a {@link FuseReply} writes its bytes: the mounted session's /dev/fuse, or a test's
 * capture, so a file system can be driven and checked without a mount.
 */
public interface ReplySink {

    /** A little-endian buffer for one reply on the calling thread (reused by the next reply of this thread). */
    ByteBuffer buffer();

    /** Sends {@code length} bytes of {@code b} (out header included) as the answer to {@code reply}. */
    void send(FuseReply reply, ByteBuffer b, int length) throws io.keywarden.linux.NativeException;
}
