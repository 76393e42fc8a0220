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

    /** One entry: node id, name, {@code DT_} type. */
    public record Entry(long ino, String name, int type) {
    }

    private final List<Entry> entries = new ArrayList<>();

    public DirentList add(long ino, String name, int type) {
        entries.add(new Entry(ino, name, type));
        return this;
    }

    /** The entries in order (a listing handed over to a successor daemon). */
    public List<Entry> entries() {
        return List.copyOf(entries);
    }

    /** Entries from index {@code offset} that fit in {@code size} bytes. */
    public ByteBuffer encode(long offset, int size) {
        ByteBuffer b = ByteBuffer.allocate(Math.max(0, size)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = (int) Math.max(0, offset); i < entries.size(); i++) {
            Entry e = entries.get(i);
            // The offset of an entry is the index of the next one: READDIR resumes there.
            FuseStructs.Dirent d = new FuseStructs.Dirent(e.ino, i + 1, e.type, e.name.getBytes(StandardCharsets.UTF_8));
            if (b.position() + d.paddedSize() > b.capacity()) {
                break;
            }
            d.encode(b, b.position());
            b.position(b.position() + d.paddedSize());
        }
        b.flip();
        return b;
    }
}
