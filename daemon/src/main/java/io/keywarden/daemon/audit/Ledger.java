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
import java.util.Optional;
import java.util.Set;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The audit ledger: JSON Lines, each record chained to the previous by SHA-256. One writer; each
 * record is written and flushed before {@link #append} returns (so before the action it records
 * takes effect), and fsync'd at most {@code fsyncInterval} later. Segments rotate by size and the
 * chain continues across them ({@code FILE.1}, {@code FILE.2}, … oldest first, then {@code FILE}).
 * A partial last line left by a crash is moved aside and a new segment started at the next open;
 * a write that fails (disk full) is cut back to the last whole record, so the file never holds a
 * partial one. Files are 0600 (0640 with a configured group). Retention drops the oldest rotated
 * segments beyond a size or age bound and records a {@code ledger.pruned} record in the chain
 * naming the first record kept, so {@code audit verify} can tell pruning from deletion.
 *
 * <p>Over 400 lines on purpose: the chain, rotation, retention and crash recovery share one lock,
 * one file position and one head; each is a method, none is safe apart from the others.
 */
public final class Ledger implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Ledger.class);
    private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() {
    };

    /**
     * How the ledger is kept: segment size, fsync bound, retention (0 bytes / null age: keep all)
     * and the group that may read it (files 0640 then, else 0600).
     */
    public record Options(long segmentBytes, Duration fsyncInterval, long retainBytes, Duration retainAge,
                          Optional<String> group) {
        public static Options of(long segmentBytes, Duration fsyncInterval) {
            return new Options(segmentBytes, fsyncInterval, 0, null, Optional.empty());
        }
    }

    private final Path file;
    private final String node;
    private final Clock clock;
    private final long maxBytes;
    private final Duration fsyncInterval;
    private final Options options;
    private final PrintStream copy;
    private FileChannel channel;
    private long size;
    private long seq;
    private String prev;
    private Instant lastSync = Instant.EPOCH;
    /** The last record found when this ledger was opened (null: a new ledger). */
    private Map<String, Object> lastAtOpen;
    /** Whether a torn last line (a crash mid-write) was found and moved aside when this ledger was opened. */
    private boolean tornAtOpen;
    private volatile boolean broken;
    private boolean dirty;
    private boolean pendingPrune;
    /** The chain's digest, used under this ledger's lock only. */
    private final java.security.MessageDigest sha;

    private Ledger(Path file, String node, Clock clock, Options options, PrintStream copy) {
        this.file = file;
        this.node = node;
        this.clock = clock;
        this.maxBytes = options.segmentBytes();
        this.fsyncInterval = options.fsyncInterval();
        this.options = options;
        this.copy = copy;
        try {
            this.sha = java.security.MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Ledger open(Path file, String node, Clock clock, long maxBytes, Duration fsyncInterval,
                              PrintStream copy) throws IOException {
        return open(file, node, clock, Options.of(maxBytes, fsyncInterval), copy);
    }

    public static Ledger open(Path file, String node, Clock clock, Options options, PrintStream copy) throws IOException {
        Ledger l = new Ledger(file.toAbsolutePath(), node, clock, options, copy);
        l.recover();
        return l;
    }

    /** The last record found when this ledger was opened, before anything this run appended. */
    public java.util.Optional<Map<String, Object>> lastAtOpen() {
        return java.util.Optional.ofNullable(lastAtOpen);
    }

    /** Whether a torn last line was moved aside when this ledger was opened. */
    public boolean tornAtOpen() {
        return tornAtOpen;
    }

    public Path file() {
        return file;
    }

    public boolean isBroken() {
        return broken;
    }

    /** Finds where the chain stands, repairing a torn last line by starting a new segment. */
    private void recover() throws IOException {
        io.keywarden.linux.SafePaths.directory(file.toAbsolutePath().getParent(), PosixFilePermissions.fromString(
                options.group().isPresent() ? "rwxr-x---" : "rwx------"), "the audit ledger " + file);
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
                Files.write(aside, java.util.Arrays.copyOfRange(all, lastNl + 1, end), StandardOpenOption.CREATE_NEW,
                        StandardOpenOption.WRITE, java.nio.file.LinkOption.NOFOLLOW_LINKS);
                try (FileChannel ch = FileChannel.open(seg, StandardOpenOption.WRITE, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                    ch.truncate(lastNl + 1);
                }
                tornAtOpen = true;
                LOG.warn("audit ledger {} ended with a partial record (crash mid-write); moved it to {}, starting a new"
                        + " segment", seg, aside);
                if (seg.equals(file)) {
                    rotate();
                }
                end = lastNl + 1;
            }
            if (end > 0) {
                int start = lastIndexOf(all, end - 1) + 1;
                Map<String, Object> last = Canonical.mapper().readValue(new String(all, start, end - start,
                        StandardCharsets.UTF_8), MAP);
                seq = ((Number) last.get("seq")).longValue();
                prev = (String) last.get("hash");
                lastAtOpen = last;
            }
        }
        channel = openSegment();
        size = channel.size();
    }

    /** Opens (creating) the live segment with the ledger's permissions: 0600, or 0640 and the configured group. */
    private FileChannel openSegment() throws IOException {
        boolean group = options.group().isPresent();
        Set<PosixFilePermission> perms = PosixFilePermissions.fromString(group ? "rw-r-----" : "rw-------");
        java.nio.file.LinkOption nofollow = java.nio.file.LinkOption.NOFOLLOW_LINKS;
        if (!Files.exists(file, nofollow)) {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(perms));
        }
        if (!Files.isRegularFile(file, nofollow)) {
            throw new IOException("the audit ledger " + file + " is not a regular file (a link or something else is there)");
        }
        // Opened first without following a link, then changed through what was opened.
        FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.APPEND, nofollow);
        try {
            Files.getFileAttributeView(file, PosixFileAttributeView.class, nofollow).setPermissions(perms);
            if (group) {
                GroupPrincipal g = file.getFileSystem().getUserPrincipalLookupService()
                        .lookupPrincipalByGroupName(options.group().get());
                Files.getFileAttributeView(file, PosixFileAttributeView.class, nofollow).setGroup(g);
            }
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
        return ch;
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
        pendingPrune = true;
    }

    /**
     * Drops the oldest rotated segments beyond the retention bounds (never the live one) and returns
     * the fields of the {@code ledger.pruned} record to write, or null when nothing was dropped.
     */
    private Map<String, Object> prune() throws IOException {
        if (options.retainBytes() <= 0 && options.retainAge() == null) {
            return null;
        }
        List<Path> rotated = new ArrayList<>(LedgerFiles.segments(file));
        rotated.remove(file);
        long total = Files.exists(file) ? Files.size(file) : 0;
        for (Path seg : rotated) {
            total += Files.size(seg);
        }
        Instant cutoff = options.retainAge() == null ? null : clock.instant().minus(options.retainAge());
        List<String> dropped = new ArrayList<>();
        for (Path seg : rotated) {
            boolean tooBig = options.retainBytes() > 0 && total > options.retainBytes();
            boolean tooOld = cutoff != null && Files.getLastModifiedTime(seg).toInstant().isBefore(cutoff);
            if (!tooBig && !tooOld) {
                break;
            }
            total -= Files.size(seg);
            Files.delete(seg);
            dropped.add(seg.getFileName().toString());
        }
        if (dropped.isEmpty()) {
            return null;
        }
        List<Path> left = LedgerFiles.segments(file);
        Map<String, Object> first = left.isEmpty() ? null : firstRecord(left.get(0));
        Map<String, Object> f = new LinkedHashMap<>();
        f.put("segments", dropped);
        f.put("kept_from_seq", first == null ? seq + 1 : first.get("seq"));
        f.put("kept_from_prev", first == null ? prev : first.get("prev"));
        f.put("reason", "retention (" + (options.retainBytes() > 0 ? options.retainBytes() + " bytes" : "")
                + (options.retainBytes() > 0 && options.retainAge() != null ? ", " : "")
                + (options.retainAge() != null ? options.retainAge().toString() : "") + ")");
        LOG.info("audit ledger retention dropped {}", dropped);
        return f;
    }

    private static Map<String, Object> firstRecord(Path seg) throws IOException {
        try (var lines = Files.lines(seg)) {
            Optional<String> l = lines.filter(x -> !x.isBlank()).findFirst();
            return l.isPresent() ? Canonical.mapper().readValue(l.get(), MAP) : null;
        }
    }

    /** fsyncs what was written since the last sync; a timer calls this so the bound holds with no further record. */
    public synchronized void syncIfDue() {
        if (channel == null || !dirty) {
            return;
        }
        try {
            channel.force(false);
            dirty = false;
            lastSync = clock.instant();
        } catch (IOException e) {
            LOG.warn("audit ledger {} fsync failed: {}", file, e.getMessage());
        }
    }

    /**
     * Appends one record and flushes it. Throws {@link LedgerException} when it cannot: callers
     * then refuse what they were about to do.
     */
    public synchronized Map<String, Object> append(String event, Map<String, Object> fields) {
        Map<String, Object> written = write(event, fields);
        if (pendingPrune) {
            pendingPrune = false;
            try {
                Map<String, Object> pruned = prune();
                if (pruned != null) {
                    LedgerEvent.LEDGER_PRUNED.check(pruned);
                    write(LedgerEvent.LEDGER_PRUNED.wire(), pruned);
                }
            } catch (IOException | LedgerException e) {
                LOG.warn("audit ledger {} retention failed: {}", file, e.getMessage());
            }
        }
        return written;
    }

    private Map<String, Object> write(String event, Map<String, Object> fields) {
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
        Canonical.Sealed sealed = Canonical.seal(r, sha);
        String hash = sealed.hash();
        r.put("hash", hash);
        byte[] line = sealed.line();
        try {
            if (channel == null || (size > 0 && size + line.length > maxBytes)) {
                if (channel != null) {
                    rotate();
                }
                channel = openSegment();
                size = channel.size();
            }
            ByteBuffer b = ByteBuffer.wrap(line);
            try {
                while (b.hasRemaining()) {
                    channel.write(b);
                }
            } catch (IOException e) {
                cutBack();
                throw e;
            }
            size += line.length;
            dirty = true;
            Instant now = clock.instant();
            if (!now.isBefore(lastSync.plus(fsyncInterval))) {
                channel.force(false);
                dirty = false;
                lastSync = now;
            }
        } catch (IOException e) {
            broken = true;
            throw new LedgerException("audit ledger " + file + " cannot be written: " + e.getMessage());
        }
        broken = false;
        seq++;
        prev = hash;
        writeHead();
        if (copy != null) {
            copy.print(new String(line, StandardCharsets.UTF_8));
            copy.flush();
        }
        return r;
    }

    /** {@code FILE.head}: the last record's seq and hash, so that cutting records off the end shows. */
    public static Path headFileOf(Path file) {
        return LedgerFiles.headFileOf(file);
    }

    private FileChannel head;

    /** One fixed-length write at offset 0 per record: the head is never half old, half new. */
    private void writeHead() {
        try {
            if (head == null) {
                head = FileChannel.open(headFileOf(file), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                        java.nio.file.LinkOption.NOFOLLOW_LINKS);
            }
            head.write(ByteBuffer.wrap(headLine(seq, prev)), 0);
        } catch (IOException e) {
            LOG.warn("audit ledger head {} cannot be written: {}", headFileOf(file), e.getMessage());
        }
    }

    /** {@code %020d:%s\n} of the seq and hash, without a formatter (it was a third of a record's cost). */
    static byte[] headLine(long seq, String hash) {
        byte[] b = new byte[20 + 1 + hash.length() + 1];
        java.util.Arrays.fill(b, 0, 20, (byte) '0');
        String digits = Long.toString(seq);
        for (int i = 0; i < digits.length(); i++) {
            b[20 - digits.length() + i] = (byte) digits.charAt(i);
        }
        b[20] = ':';
        for (int i = 0; i < hash.length(); i++) {
            b[21 + i] = (byte) hash.charAt(i);
        }
        b[b.length - 1] = '\n';
        return b;
    }

    /** A failed write may have left part of the record: cut the file back to the last whole one. */
    private void cutBack() {
        try {
            channel.truncate(size);
        } catch (IOException e) {
            LOG.error("audit ledger {}: could not cut a partial record back ({}); the next start moves it aside",
                    file, e.getMessage());
        }
    }

    @Override
    public synchronized void close() throws IOException {
        if (head != null) {
            head.force(false);
            head.close();
            head = null;
        }
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
                    out.add(Canonical.mapper().readValue(line, MAP));
                }
            }
        }
        return out;
    }
}
