package io.keywarden.fuse;

import java.nio.ByteBuffer;

/**
 * The FUSE wire structures keywarden speaks, one record each, laid out as in the kernel's
 * {@code include/uapi/linux/fuse.h} (protocol 7.31 and later; little-endian, natural alignment,
 * no implicit padding). Each has its {@code SIZE}, {@code encode(buffer, offset)} and
 * {@code decode(buffer, offset)}; {@code FuseStructsTest} pins every byte. Fields the kernel
 * ignores in our replies (padding, unused arrays) are written as zeros.
 */
public final class FuseStructs {
    private FuseStructs() {
    }

    /** {@code struct fuse_in_header}: 40 bytes before every request's body. */
    public record InHeader(int len, int opcode, long unique, long nodeId, int uid, int gid, int pid, short totalExtlen) {
        public static final int SIZE = 40;

        public void encode(ByteBuffer b, int at) {
            b.putInt(at, len);
            b.putInt(at + 4, opcode);
            b.putLong(at + 8, unique);
            b.putLong(at + 16, nodeId);
            b.putInt(at + 24, uid);
            b.putInt(at + 28, gid);
            b.putInt(at + 32, pid);
            b.putShort(at + 36, totalExtlen);
            b.putShort(at + 38, (short) 0);
        }

        public static InHeader decode(ByteBuffer b, int at) {
            return new InHeader(b.getInt(at), b.getInt(at + 4), b.getLong(at + 8), b.getLong(at + 16), b.getInt(at + 24),
                    b.getInt(at + 28), b.getInt(at + 32), b.getShort(at + 36));
        }
    }

    /** {@code struct fuse_out_header}: 16 bytes before every reply; {@code error} is 0 or a negative errno. */
    public record OutHeader(int len, int error, long unique) {
        public static final int SIZE = 16;

        public void encode(ByteBuffer b, int at) {
            b.putInt(at, len);
            b.putInt(at + 4, error);
            b.putLong(at + 8, unique);
        }

        public static OutHeader decode(ByteBuffer b, int at) {
            return new OutHeader(b.getInt(at), b.getInt(at + 4), b.getLong(at + 8));
        }
    }

    /** {@code struct fuse_entry_out}: the LOOKUP answer, 40 bytes then a {@link FuseAttr}. */
    public record EntryOut(long nodeId, long generation, long entryValid, long attrValid, int entryValidNsec,
                           int attrValidNsec, FuseAttr attr) {
        public static final int SIZE = 40 + FuseAttr.SIZE;

        /** Validity given in nanoseconds, split as the kernel wants it. */
        public static EntryOut of(long nodeId, FuseAttr attr, long entryValidNanos, long attrValidNanos) {
            return of(nodeId, 0, attr, entryValidNanos, attrValidNanos);
        }

        public static EntryOut of(long nodeId, long generation, FuseAttr attr, long entryValidNanos, long attrValidNanos) {
            return new EntryOut(nodeId, generation, entryValidNanos / 1_000_000_000L, attrValidNanos / 1_000_000_000L,
                    (int) (entryValidNanos % 1_000_000_000L), (int) (attrValidNanos % 1_000_000_000L), attr);
        }

        public void encode(ByteBuffer b, int at) {
            b.putLong(at, nodeId);
            b.putLong(at + 8, generation);
            b.putLong(at + 16, entryValid);
            b.putLong(at + 24, attrValid);
            b.putInt(at + 32, entryValidNsec);
            b.putInt(at + 36, attrValidNsec);
            attr.encode(b, at + 40);
        }

        public static EntryOut decode(ByteBuffer b, int at) {
            return new EntryOut(b.getLong(at), b.getLong(at + 8), b.getLong(at + 16), b.getLong(at + 24), b.getInt(at + 32),
                    b.getInt(at + 36), FuseAttr.decode(b, at + 40));
        }
    }

    /** {@code struct fuse_attr_out}: the GETATTR answer. */
    public record AttrOut(long attrValid, int attrValidNsec, FuseAttr attr) {
        public static final int SIZE = 16 + FuseAttr.SIZE;

        public static AttrOut of(FuseAttr attr, long validNanos) {
            return new AttrOut(validNanos / 1_000_000_000L, (int) (validNanos % 1_000_000_000L), attr);
        }

        public void encode(ByteBuffer b, int at) {
            b.putLong(at, attrValid);
            b.putInt(at + 8, attrValidNsec);
            b.putInt(at + 12, 0);
            attr.encode(b, at + 16);
        }

        public static AttrOut decode(ByteBuffer b, int at) {
            return new AttrOut(b.getLong(at), b.getInt(at + 8), FuseAttr.decode(b, at + 16));
        }
    }

    /** {@code struct fuse_open_in}: OPEN and OPENDIR; {@code flags} are the open(2) flags. */
    public record OpenIn(int flags, int openFlags) {
        public static final int SIZE = 8;

        public void encode(ByteBuffer b, int at) {
            b.putInt(at, flags);
            b.putInt(at + 4, openFlags);
        }

        public static OpenIn decode(ByteBuffer b, int at) {
            return new OpenIn(b.getInt(at), b.getInt(at + 4));
        }
    }

    /** {@code struct fuse_open_out}: a handle and FOPEN_* flags ({@code backingId} is 0: no passthrough). */
    public record OpenOut(long fh, int openFlags, int backingId) {
        public static final int SIZE = 16;

        public void encode(ByteBuffer b, int at) {
            b.putLong(at, fh);
            b.putInt(at + 8, openFlags);
            b.putInt(at + 12, backingId);
        }

        public static OpenOut decode(ByteBuffer b, int at) {
            return new OpenOut(b.getLong(at), b.getInt(at + 8), b.getInt(at + 12));
        }
    }

    /** {@code struct fuse_read_in}: READ and READDIR. */
    public record ReadIn(long fh, long offset, int size, int readFlags, long lockOwner, int flags) {
        public static final int SIZE = 40;

        public void encode(ByteBuffer b, int at) {
            b.putLong(at, fh);
            b.putLong(at + 8, offset);
            b.putInt(at + 16, size);
            b.putInt(at + 20, readFlags);
            b.putLong(at + 24, lockOwner);
            b.putInt(at + 32, flags);
            b.putInt(at + 36, 0);
        }

        public static ReadIn decode(ByteBuffer b, int at) {
            return new ReadIn(b.getLong(at), b.getLong(at + 8), b.getInt(at + 16), b.getInt(at + 20), b.getLong(at + 24),
                    b.getInt(at + 32));
        }
    }

    /** {@code struct fuse_init_in}: what the kernel offers (flags2 only with FUSE_INIT_EXT in flags). */
    public record InitIn(int major, int minor, int maxReadahead, int flags, int flags2) {
        public static final int SIZE = 64;
        /** The part every kernel of protocol 7.31 sends (before flags2 and the unused words). */
        public static final int MIN_SIZE = 16;

        public void encode(ByteBuffer b, int at) {
            b.putInt(at, major);
            b.putInt(at + 4, minor);
            b.putInt(at + 8, maxReadahead);
            b.putInt(at + 12, flags);
            b.putInt(at + 16, flags2);
            for (int i = 20; i < SIZE; i += 4) {
                b.putInt(at + i, 0);
            }
        }

        /** Decodes what the kernel sent: {@code length} may be the 7.31 size (16) or the full 64. */
        public static InitIn decode(ByteBuffer b, int at, int length) {
            int flags = b.getInt(at + 12);
            int flags2 = length >= 20 && (flags & FuseSession.FUSE_INIT_EXT) != 0 ? b.getInt(at + 16) : 0;
            return new InitIn(b.getInt(at), b.getInt(at + 4), b.getInt(at + 8), flags, flags2);
        }
    }

    /** {@code struct fuse_init_out}: what we take of it; {@code requestTimeout} in seconds (7.43, kernel 6.14). */
    public record InitOut(int major, int minor, int maxReadahead, int flags, short maxBackground,
                          short congestionThreshold, int maxWrite, int timeGran, short maxPages, short mapAlignment,
                          int flags2, int maxStackDepth, short requestTimeout) {
        public static final int SIZE = 64;

        public void encode(ByteBuffer b, int at) {
            b.putInt(at, major);
            b.putInt(at + 4, minor);
            b.putInt(at + 8, maxReadahead);
            b.putInt(at + 12, flags);
            b.putShort(at + 16, maxBackground);
            b.putShort(at + 18, congestionThreshold);
            b.putInt(at + 20, maxWrite);
            b.putInt(at + 24, timeGran);
            b.putShort(at + 28, maxPages);
            b.putShort(at + 30, mapAlignment);
            b.putInt(at + 32, flags2);
            b.putInt(at + 36, maxStackDepth);
            b.putShort(at + 40, requestTimeout);
            for (int i = 42; i < SIZE; i += 2) {
                b.putShort(at + i, (short) 0);
            }
        }

        public static InitOut decode(ByteBuffer b, int at) {
            return new InitOut(b.getInt(at), b.getInt(at + 4), b.getInt(at + 8), b.getInt(at + 12), b.getShort(at + 16),
                    b.getShort(at + 18), b.getInt(at + 20), b.getInt(at + 24), b.getShort(at + 28), b.getShort(at + 30),
                    b.getInt(at + 32), b.getInt(at + 36), b.getShort(at + 40));
        }
    }

    /** {@code struct fuse_statfs_out} ({@code struct fuse_kstatfs}). */
    public record StatfsOut(long blocks, long bfree, long bavail, long files, long ffree, int bsize, int namelen,
                            int frsize) {
        public static final int SIZE = 80;

        public void encode(ByteBuffer b, int at) {
            b.putLong(at, blocks);
            b.putLong(at + 8, bfree);
            b.putLong(at + 16, bavail);
            b.putLong(at + 24, files);
            b.putLong(at + 32, ffree);
            b.putInt(at + 40, bsize);
            b.putInt(at + 44, namelen);
            b.putInt(at + 48, frsize);
            for (int i = 52; i < SIZE; i += 4) {
                b.putInt(at + i, 0);
            }
        }

        public static StatfsOut decode(ByteBuffer b, int at) {
            return new StatfsOut(b.getLong(at), b.getLong(at + 8), b.getLong(at + 16), b.getLong(at + 24),
                    b.getLong(at + 32), b.getInt(at + 40), b.getInt(at + 44), b.getInt(at + 48));
        }
    }

    /** {@code struct fuse_notify_inval_inode_out}: drop cached pages of {@code ino} from {@code off} ({@code len} 0: all). */
    public record NotifyInvalInode(long ino, long off, long len) {
        public static final int SIZE = 24;
        /** The notification code in the out header's error field. */
        public static final int CODE = 2;

        public void encode(ByteBuffer b, int at) {
            b.putLong(at, ino);
            b.putLong(at + 8, off);
            b.putLong(at + 16, len);
        }

        public static NotifyInvalInode decode(ByteBuffer b, int at) {
            return new NotifyInvalInode(b.getLong(at), b.getLong(at + 8), b.getLong(at + 16));
        }
    }

    /** {@code struct fuse_dirent}: 24 bytes, then the name, padded with zeros to a multiple of 8. */
    public record Dirent(long ino, long off, int type, byte[] name) {
        public static final int HEADER = 24;

        public int paddedSize() {
            return (HEADER + name.length + 7) & ~7;
        }

        public void encode(ByteBuffer b, int at) {
            b.putLong(at, ino);
            b.putLong(at + 8, off);
            b.putInt(at + 16, name.length);
            b.putInt(at + 20, type);
            b.put(at + HEADER, name);
            for (int p = HEADER + name.length; p < paddedSize(); p++) {
                b.put(at + p, (byte) 0);
            }
        }

        public static Dirent decode(ByteBuffer b, int at) {
            int len = b.getInt(at + 16);
            byte[] name = new byte[len];
            b.get(at + HEADER, name);
            return new Dirent(b.getLong(at), b.getLong(at + 8), b.getInt(at + 20), name);
        }
    }
}
