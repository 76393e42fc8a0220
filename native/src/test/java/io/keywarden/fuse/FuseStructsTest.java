package io.keywarden.fuse;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/**
 * Every FUSE structure byte for byte, against the layout of include/uapi/linux/fuse.h: the
 * expected bytes are written field by field (little-endian), so an offset off by one fails here
 * rather than as a confused kernel.
 */
class FuseStructsTest {

    /** Little-endian hex of the given fields: "u32:5" "u64:..." "u16:..." "pad:N" (N zero bytes). */
    private static String le(String... fields) {
        ByteBuffer b = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
        for (String f : fields) {
            String[] p = f.split(":");
            long v = Long.parseUnsignedLong(p[1]);
            switch (p[0]) {
                case "u8" -> b.put((byte) v);
                case "u16" -> b.putShort((short) v);
                case "u32" -> b.putInt((int) v);
                case "u64" -> b.putLong(v);
                case "pad" -> b.put(new byte[(int) v]);
                default -> throw new IllegalArgumentException(f);
            }
        }
        byte[] out = new byte[b.position()];
        b.flip().get(out);
        return HexFormat.of().formatHex(out);
    }

    private static ByteBuffer buf() {
        ByteBuffer b = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
        // Garbage first: encode must write every byte of its size, padding included.
        for (int i = 0; i < b.capacity(); i++) {
            b.put(i, (byte) 0xA5);
        }
        return b;
    }

    private static String hex(ByteBuffer b, int at, int len) {
        byte[] out = new byte[len];
        b.get(at, out);
        return HexFormat.of().formatHex(out);
    }

    private static final String ATTR = le("u64:77", "u64:4096", "u64:8", "u64:1700000000", "u64:1700000000",
            "u64:1700000000", "u32:0", "u32:0", "u32:0", "u32:33060", "u32:1", "u32:0", "u32:0", "u32:0", "u32:4096",
            "u32:0");

    @Test
    void attr() {
        ByteBuffer b = buf();
        FuseAttr a = FuseAttr.file(77, 4096, 0444, 1_700_000_000L);
        a.encode(b, 0);
        assertEquals(88, FuseAttr.SIZE);
        assertEquals(ATTR, hex(b, 0, FuseAttr.SIZE));
        assertEquals(a, FuseAttr.decode(b, 0));
    }

    @Test
    void inHeader() {
        ByteBuffer b = buf();
        FuseStructs.InHeader h = new FuseStructs.InHeader(48, FuseOpcode.OPEN, 0x1122334455667788L, 5, 1001, 1002, 4242,
                (short) 0);
        h.encode(b, 0);
        assertEquals(le("u32:48", "u32:14", "u64:1234605616436508552", "u64:5", "u32:1001", "u32:1002", "u32:4242",
                "u16:0", "u16:0"), hex(b, 0, 40));
        assertEquals(h, FuseStructs.InHeader.decode(b, 0));
    }

    @Test
    void outHeaderCarriesANegativeErrno() {
        ByteBuffer b = buf();
        new FuseStructs.OutHeader(16, -13, 9).encode(b, 0);
        assertEquals(le("u32:16", "u32:" + Integer.toUnsignedLong(-13), "u64:9"), hex(b, 0, 16));
        assertEquals(new FuseStructs.OutHeader(16, -13, 9), FuseStructs.OutHeader.decode(b, 0));
    }

    @Test
    void entryOutSplitsNanoseconds() {
        ByteBuffer b = buf();
        FuseStructs.EntryOut e = FuseStructs.EntryOut.of(77, FuseAttr.file(77, 4096, 0444, 1_700_000_000L),
                5_250_000_000L, 1_000_000_001L);
        e.encode(b, 0);
        assertEquals(128, FuseStructs.EntryOut.SIZE);
        assertEquals(le("u64:77", "u64:0", "u64:5", "u64:1", "u32:250000000", "u32:1") + ATTR, hex(b, 0, 128));
        assertEquals(e, FuseStructs.EntryOut.decode(b, 0));
    }

    @Test
    void attrOut() {
        ByteBuffer b = buf();
        FuseStructs.AttrOut a = FuseStructs.AttrOut.of(FuseAttr.file(77, 4096, 0444, 1_700_000_000L), 5_000_000_000L);
        a.encode(b, 0);
        assertEquals(104, FuseStructs.AttrOut.SIZE);
        assertEquals(le("u64:5", "u32:0", "u32:0") + ATTR, hex(b, 0, 104));
        assertEquals(a, FuseStructs.AttrOut.decode(b, 0));
    }

    @Test
    void openInAndOut() {
        ByteBuffer b = buf();
        new FuseStructs.OpenIn(0x8000, 0).encode(b, 0);
        assertEquals(le("u32:32768", "u32:0"), hex(b, 0, 8));
        new FuseStructs.OpenOut(3, FuseSession.FOPEN_DIRECT_IO | FuseSession.FOPEN_NOFLUSH, 0).encode(b, 0);
        assertEquals(le("u64:3", "u32:33", "u32:0"), hex(b, 0, 16));
        assertEquals(new FuseStructs.OpenOut(3, 33, 0), FuseStructs.OpenOut.decode(b, 0));
    }

    @Test
    void readIn() {
        ByteBuffer b = buf();
        FuseStructs.ReadIn r = new FuseStructs.ReadIn(3, 4096, 131072, 0, 0xdeadbeefL, 0x8000);
        r.encode(b, 0);
        assertEquals(le("u64:3", "u64:4096", "u32:131072", "u32:0", "u64:3735928559", "u32:32768", "u32:0"),
                hex(b, 0, 40));
        assertEquals(r, FuseStructs.ReadIn.decode(b, 0));
    }

    @Test
    void initInOfAnOldKernelHasNoFlags2() {
        ByteBuffer b = buf();
        new FuseStructs.InitIn(7, 45, 131072, FuseSession.FUSE_INIT_EXT | 1, 1 << 10).encode(b, 0);
        assertEquals(le("u32:7", "u32:45", "u32:131072", "u32:" + ((1L << 30) | 1), "u32:1024", "pad:44"), hex(b, 0, 64));
        assertEquals(1 << 10, FuseStructs.InitIn.decode(b, 0, 64).flags2());
        // A 7.31 kernel sends 16 bytes: whatever follows is not flags2.
        assertEquals(0, FuseStructs.InitIn.decode(b, 0, 16).flags2());
        // Without FUSE_INIT_EXT in flags, flags2 is not to be read either.
        new FuseStructs.InitIn(7, 45, 0, 1, 1 << 10).encode(b, 0);
        assertEquals(0, FuseStructs.InitIn.decode(b, 0, 64).flags2());
    }

    @Test
    void initOutPutsTheRequestTimeoutAtOffset40() {
        ByteBuffer b = buf();
        FuseStructs.InitOut o = new FuseStructs.InitOut(7, 31, 0, FuseSession.FUSE_INIT_EXT | 1, (short) 16, (short) 12,
                131072, 1, (short) 0, (short) 0, 1 << 10, 0, (short) 60);
        o.encode(b, 0);
        assertEquals(le("u32:7", "u32:31", "u32:0", "u32:" + ((1L << 30) | 1), "u16:16", "u16:12", "u32:131072", "u32:1",
                "u16:0", "u16:0", "u32:1024", "u32:0", "u16:60", "pad:22"), hex(b, 0, 64));
        assertEquals(o, FuseStructs.InitOut.decode(b, 0));
    }

    @Test
    void statfsOut() {
        ByteBuffer b = buf();
        FuseStructs.StatfsOut s = new FuseStructs.StatfsOut(0, 0, 0, 11, 0, 4096, 255, 4096);
        s.encode(b, 0);
        assertEquals(le("u64:0", "u64:0", "u64:0", "u64:11", "u64:0", "u32:4096", "u32:255", "u32:4096", "pad:28"),
                hex(b, 0, 80));
        assertEquals(s, FuseStructs.StatfsOut.decode(b, 0));
    }

    @Test
    void notifyInvalInode() {
        ByteBuffer b = buf();
        new FuseStructs.NotifyInvalInode(0x10000000011L, 0, 0).encode(b, 0);
        assertEquals(le("u64:" + 0x10000000011L, "u64:0", "u64:0"), hex(b, 0, 24));
    }

    @Test
    void direntsArePaddedToEightBytesWithZeros() {
        ByteBuffer b = buf();
        FuseStructs.Dirent d = new FuseStructs.Dirent(16, 3, DirentList.DT_DIR, "openai".getBytes(StandardCharsets.UTF_8));
        assertEquals(32, d.paddedSize());
        d.encode(b, 0);
        assertEquals(le("u64:16", "u64:3", "u32:6", "u32:4") + HexFormat.of().formatHex("openai".getBytes(
                StandardCharsets.UTF_8)) + "0000", hex(b, 0, 32));
        FuseStructs.Dirent back = FuseStructs.Dirent.decode(b, 0);
        assertArrayEquals(d.name(), back.name());
        assertEquals(16, back.ino());
        // A list resumes at the offset the previous READDIR ended on; an 8-byte name needs no padding.
        ByteBuffer list = new DirentList().add(1, ".", DirentList.DT_DIR).add(1, "..", DirentList.DT_DIR)
                .add(16, "api_key1", DirentList.DT_REG).encode(2, 4096);
        assertEquals(32, list.remaining());
        assertEquals(3, FuseStructs.Dirent.decode(list, 0).off());
    }

    @Test
    void aRequestDecodesFromItsHeaderAndRefusesALengthMismatch() {
        ByteBuffer b = buf();
        new FuseStructs.InHeader(48, FuseOpcode.OPEN, 7, 5, 1001, 1002, 4242, (short) 0).encode(b, 0);
        new FuseStructs.OpenIn(0, 0).encode(b, 40);
        FuseRequest r = FuseRequest.decode(b, 48);
        assertEquals(4242, r.pid());
        assertEquals(0, r.openIn().flags());
        assertEquals(FuseProtocolException.class, org.junit.jupiter.api.Assertions.assertThrows(
                FuseProtocolException.class, () -> FuseRequest.decode(b, 47)).getClass());
        assertEquals(FuseProtocolException.class, org.junit.jupiter.api.Assertions.assertThrows(
                FuseProtocolException.class, () -> FuseRequest.decode(b, 12)).getClass());
        // An OPEN whose body is shorter than fuse_open_in is a protocol error, not a read past the body.
        new FuseStructs.InHeader(44, FuseOpcode.OPEN, 7, 5, 1001, 1002, 4242, (short) 0).encode(b, 0);
        FuseRequest shortOpen = FuseRequest.decode(b, 44);
        org.junit.jupiter.api.Assertions.assertThrows(FuseProtocolException.class, shortOpen::openIn);
    }

    @Test
    void aReplyIsWrittenOnceToItsSink() {
        ByteBuffer[] sent = new ByteBuffer[1];
        int[] count = {0};
        ReplySink sink = new ReplySink() {
            private final ByteBuffer b = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);

            @Override
            public ByteBuffer buffer() {
                return b;
            }

            @Override
            public void send(FuseReply reply, ByteBuffer buf, int length) {
                count[0]++;
                sent[0] = buf.slice(0, length).order(ByteOrder.LITTLE_ENDIAN);
            }
        };
        FuseReply r = new FuseReply(sink, 9, FuseOpcode.OPEN);
        r.error(13);
        r.open(1, 0);
        assertEquals(1, count[0], "later answers are ignored");
        assertEquals(new FuseStructs.OutHeader(16, -13, 9), FuseStructs.OutHeader.decode(sent[0], 0));
    }
}
