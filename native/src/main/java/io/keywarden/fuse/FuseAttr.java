package io.keywarden.fuse;

import java.nio.ByteBuffer;

/** {@code struct fuse_attr}: what stat(2) shows for a node (one of the {@link FuseStructs}). */
public record FuseAttr(long ino, long size, int mode, int nlink, int uid, int gid, long timeSeconds) {
    public static final int S_IFDIR = 0040000;
    public static final int S_IFREG = 0100000;
    public static final int SIZE = 88;

    public static FuseAttr directory(long ino, int perm, long time) {
        return new FuseAttr(ino, 0, S_IFDIR | perm, 2, 0, 0, time);
    }

    public static FuseAttr file(long ino, long size, int perm, long time) {
        return new FuseAttr(ino, size, S_IFREG | perm, 1, 0, 0, time);
    }

    /** Reads {@code struct fuse_attr} (atime, mtime and ctime are written equal; mtime is read back). */
    public static FuseAttr decode(ByteBuffer b, int at) {
        return new FuseAttr(b.getLong(at), b.getLong(at + 8), b.getInt(at + 60), b.getInt(at + 64), b.getInt(at + 68),
                b.getInt(at + 72), b.getLong(at + 32));
    }

    /** Writes {@code struct fuse_attr} (88 bytes): blocks of 512 bytes, blksize 4096, no nanoseconds. */
    public void encode(ByteBuffer b, int at) {
        b.putLong(at, ino);
        b.putLong(at + 8, size);
        b.putLong(at + 16, (size + 511) / 512);
        b.putLong(at + 24, timeSeconds);
        b.putLong(at + 32, timeSeconds);
        b.putLong(at + 40, timeSeconds);
        b.putInt(at + 48, 0);
        b.putInt(at + 52, 0);
        b.putInt(at + 56, 0);
        b.putInt(at + 60, mode);
        b.putInt(at + 64, nlink);
        b.putInt(at + 68, uid);
        b.putInt(at + 72, gid);
        b.putInt(at + 76, 0);
        b.putInt(at + 80, 4096);
        b.putInt(at + 84, 0);
    }
}
