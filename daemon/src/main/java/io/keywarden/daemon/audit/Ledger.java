package io.keywarden.daemon.audit;

import com.fasterxml.jackson.core.type.TypeReference;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The audit ledger: JSON Lines, each record chained to the previous by SHA-256. One writer; each
 * record is written and flushed before {@link #append} returns (so before the action it records
 * takes effect), and fsync'd at most {@code fsyncInterval} later. Segments rotate by size and the
 * chain continues across them ({@code FILE.1}, {@code FILE.2}, … oldest first, then {@code FILE}).
 * A partial last line left by a crash is moved aside and a new segment started at the next open.
 */
public final class Ledger implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Ledger.class);
    private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() {
    };

    private final Path file;
    private final String node;
    private final Clock clock;
    private final long maxBytes;
    private final Duration fsyncInterval;
    private final PrintStream copy;
    private FileChannel channel;
    private long size;
    private long seq;
    private String prev;
    private Instant lastSync = Instant.EPOCH;
    private volatile boolean broken;

    private Ledger(Path file, String node, Clock clock, long maxBytes, Duration fsyncInterval, PrintStream copy) {
        this.file = file;
        this.node = node;
        this.clock = clock;
        this.maxBytes = maxBytes;
        this.fsyncInterval = fsyncInterval;
        this.copy = copy;
    }

    public static Ledger open(Path file, String node, Clock clock, long maxBytes, Duration fsyncInterval,
                              PrintStream copy) throws IOException {
        Ledger l = new Ledger(file.toAbsolutePath(), node, clock, maxBytes, fsyncInterval, copy);
        l.recover();
        return l;
    }

    public Path file() {
        return file;
    }

    public boolean isBroken() {
        return broken;
    }

    /** Finds where the chain stands, repairing a torn last line by starting a new segment. */
    private void recover() throws IOException {
        Files.createDirectories(file.getParent());
        List<Path> segments = LedgerFiles.segments(file);
        seq = 0;
        prev = Canonical.GENESIS;
        for (int i = segments.size() - 1; i >= 0 && seq == 0; i--) {
            Path seg = segments.get(i);
            byte[] all = Files.readAllBytes(seg);
            int end = all.length;
            if (end > 0 && all[end - 1] != '\n') {
                int lastNl = lastIndexOf(all, end);
                Path aside = seg.resolveSibling(seg.getFileName() + ".partial-" + clock.millis());
                Files.write(aside, java.util.Arrays.copyOfRange(all, lastNl + 1, end));
                try (FileChannel ch = FileChannel.open(seg, StandardOpenOption.WRITE)) {
                    ch.truncate(lastNl + 1);
                }
                LOG.warn("audit ledger {} ended with a partial record (crash mid-write); moved it to {}, starting a new"
                        + " segment", seg, aside);
                if (seg.equals(file)) {
                    rotate();
                }
                end = lastNl + 1;
            }
            if (end > 0) {
                int start = lastIndexOf(all, end - 1) + 1;
                Map<String, Object> last = Canonical.JSON.readValue(new String(all, start, end - start,
                        StandardCharsets.UTF_8), MAP);
                seq = ((Number) last.get("seq")).longValue();
                prev = (String) last.get("hash");
            }
        }
        channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.APPEND);
        size = channel.size();
    }

    private static int lastIndexOf(byte[] b, int before) {
        for (int i = before - 1; i >= 0; i--) {
            if (b[i] == '\n') {
                return i;
            }
        }
        return -1;
    }

    private void rotate() throws IOException {
        if (channel != null) {
            channel.force(true);
            channel.close();
        }
        Path next = file.resolveSibling(file.getFileName() + "." + (LedgerFiles.lastSegmentNumber(file) + 1));
        Files.move(file, next, StandardCopyOption.ATOMIC_MOVE);
        channel = null;
    }

    /**
     * Appends one record and flushes it. Throws {@link LedgerException} when it cannot: callers
     * then refuse what they were about to do.
     */
    public synchronized Map<String, Object> append(String event, Map<String, Object> fields) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("seq", seq + 1);
        r.put("ts", DateTimeFormatter.ISO_INSTANT.format(clock.instant().truncatedTo(ChronoUnit.MILLIS)));
        r.put("event", event);
        r.put("node", node);
        r.put("prev", prev);
        fields.forEach((k, v) -> {
            if (v != null) {
                r.put(k, v);
            }
        });
        String hash = Canonical.hash(r);
        r.put("hash", hash);
        byte[] line = (Canonical.json(r) + "\n").getBytes(StandardCharsets.UTF_8);
        try {
            if (channel == null || (size > 0 && size + line.length > maxBytes)) {
                if (channel != null) {
                    rotate();
                }
                channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                        StandardOpenOption.APPEND);
                size = channel.size();
            }
            ByteBuffer b = ByteBuffer.wrap(line);
            while (b.hasRemaining()) {
                channel.write(b);
            }
            size += line.length;
            Instant now = clock.instant();
            if (!now.isBefore(lastSync.plus(fsyncInterval))) {
                channel.force(false);
                lastSync = now;
            }
        } catch (IOException e) {
            broken = true;
            throw new LedgerException("audit ledger " + file + " cannot be written: " + e.getMessage());
        }
        broken = false;
        seq++;
        prev = hash;
        if (copy != null) {
            copy.print(new String(line, StandardCharsets.UTF_8));
            copy.flush();
        }
        return r;
    }

    @Override
    public synchronized void close() throws IOException {
        if (channel != null) {
            channel.force(true);
            channel.close();
            channel = null;
        }
    }

    static List<Map<String, Object>> readAll(Path file) throws IOException {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Path seg : LedgerFiles.segments(file)) {
            for (String line : Files.readAllLines(seg)) {
                if (!line.isBlank()) {
                    out.add(Canonical.JSON.readValue(line, MAP));
                }
            }
        }
        return out;
    }
}
