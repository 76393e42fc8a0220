package io.keywarden.fuse;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** A directory's entries, encoded as READDIR expects from a given offset (entry index). */
public final class DirentList {
    public static final int DT_DIR = 4;
    public static final int DT_REG = 8;

    private record Entry(long ino, String name, int type) {
    }

    private final List<Entry> entries = new ArrayList<>();

    public DirentList add(long ino, String name, int type) {
        entries.add(new Entry(ino, name, type));
        return this;
    }

    /** Entries from index {@code offset} that fit in {@code size} bytes. */
    ByteBuffer encode(long offset, int size) {
        ByteBuffer b = ByteBuffer.allocate(Math.max(0, size)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = (int) Math.max(0, offset); i < entries.size(); i++) {
            Entry e = entries.get(i);
            byte[] name = e.name.getBytes(StandardCharsets.UTF_8);
            int len = 24 + name.length;
            int padded = (len + 7) & ~7;
            if (b.position() + padded > b.capacity()) {
                break;
            }
            int at = b.position();
            b.putLong(at, e.ino);
            b.putLong(at + 8, i + 1);
            b.putInt(at + 16, name.length);
            b.putInt(at + 20, e.type);
            b.put(at + 24, name);
            for (int p = len; p < padded; p++) {
                b.put(at + p, (byte) 0);
            }
            b.position(at + padded);
        }
        b.flip();
        return b;
    }
}
