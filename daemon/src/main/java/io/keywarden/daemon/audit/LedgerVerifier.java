package io.keywarden.daemon.audit;

import com.fasterxml.jackson.core.type.TypeReference;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Checks a ledger's hash chain across its segments and names the first bad record. */
public final class LedgerVerifier {
    private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() {
    };

    /** {@code ok} with the count, or the first broken record, its line and why. */
    /** {@code records}: the last record's seq; {@code lastHash}: its hash (the chain's head), when ok. */
    public record Result(boolean ok, long records, long brokenRecord, long line, String reason, String lastHash) {
        public Result(boolean ok, long records, long brokenRecord, long line, String reason) {
            this(ok, records, brokenRecord, line, reason, null);
        }

        public String describe() {
            return ok ? "OK: " + records + " records; head " + records + ":" + lastHash
                    : "BROKEN at record " + brokenRecord + " (line " + line + "): " + reason;
        }
    }

    /** A head (seq and hash of the last record) to hold the chain against: from {@code FILE.head} or an auditor. */
    public record Head(long seq, String hash) {
        public static Head parse(String text) {
            String[] p = text.trim().split("[\\s:]+");
            if (p.length != 2 || !p[1].matches("[0-9a-f]{64}")) {
                throw new IllegalArgumentException("a head is SEQ:HASH (64 hex), not '" + text.trim() + "'");
            }
            return new Head(Long.parseLong(p[0]), p[1]);
        }
    }

    /**
     * Verifies the chain and holds its end against {@code expected}: fewer records than the head
     * names is TRUNCATED; the same seq with another hash, or a head the chain never had, is BROKEN.
     */
    public static Result verify(Path file, Head expected) throws IOException {
        return verify(file, expected, null);
    }

    /** {@link #verify(Path, Head)}, handing each verified record to {@code visitor} (null: none). */
    public static Result verify(Path file, Head expected, Visitor visitor) throws IOException {
        Result r = verify(file, visitor);
        if (!r.ok() || expected == null) {
            return r;
        }
        if (r.records() < expected.seq()) {
            return new Result(false, r.records(), r.records() + 1, 0, "TRUNCATED after record " + r.records()
                    + ": the head names record " + expected.seq() + " (records were cut off the end)", null);
        }
        if (r.records() == expected.seq() && !r.lastHash().equals(expected.hash())) {
            return new Result(false, r.records(), r.records(), 0, "the last record's hash is not the head's "
                    + "(the end of the ledger was rewritten)", null);
        }
        return r;
    }

    private LedgerVerifier() {
    }

    public static Result verify(Path file) throws IOException {
        return verify(file, (Visitor) null);
    }

    /** Sees each verified record's line, in order, as the chain is checked (one pass for verify and show). */
    public interface Visitor {
        void record(Fields fields, byte[] buf, int start, int end);
    }

    /** {@link #verify(Path)}, handing every record that verified to {@code visitor}. */
    public static Result verify(Path file, Visitor visitor) throws IOException {
        List<Path> segments = LedgerFiles.segments(file);
        if (segments.isEmpty()) {
            throw new java.nio.file.NoSuchFileException(file.toString());
        }
        long expectedSeq = 1;
        String prev = Canonical.GENESIS;
        // Retention may have dropped the oldest segments: the chain then starts later, and a
        // ledger.pruned record inside it must name exactly where (else records were deleted).
        long firstSeq = 1;
        String firstPrev = Canonical.GENESIS;
        Fields head = firstRecord(segments.get(0));
        if (head != null && head.seq > 1 && head.prev != null) {
            firstSeq = head.seq;
            firstPrev = head.prev;
            expectedSeq = firstSeq;
            prev = firstPrev;
        }
        boolean pruneAccounted = firstSeq == 1;
        for (Path seg : segments) {
            String where = segments.size() > 1 ? seg.getFileName() + " " : "";
            byte[] all = Files.readAllBytes(seg);
            // Each line's fields and hash are its own: read on every core, each part taking the lines
            // that start in its share of the bytes; the chain is then walked in order.
            int parts = all.length < 500_000 ? 1 : Math.min(Runtime.getRuntime().availableProcessors(), 8);
            Lines[] read = new Lines[parts];
            java.util.stream.IntStream.range(0, parts).parallel().forEach(part -> read[part] = Lines.read(all,
                    (int) ((long) all.length * part / parts), (int) ((long) all.length * (part + 1) / parts)));
            long lineNo = 0;
            for (Lines part : read) {
                for (int i = 0; i < part.count; i++) {
                    lineNo++;
                    if (part.torn && i == part.count - 1) {
                        return broken(expectedSeq, lineNo, where + "truncated record (partial last line, a crash mid-write)");
                    }
                    Fields r = part.fields[i];
                    if (r == null) {
                        return broken(expectedSeq, lineNo, where + "not a JSON object");
                    }
                    if (r.seq != expectedSeq) {
                        return broken(expectedSeq, lineNo, where + "seq is " + (r.seq == Long.MIN_VALUE ? "missing" : r.seq)
                                + ", expected " + expectedSeq + " (a record was deleted, inserted or reordered)");
                    }
                    if (!prev.equals(r.prev)) {
                        return broken(expectedSeq, lineNo, where + "prev does not match the previous record's hash"
                                + " (a record before it was changed, deleted or reordered)");
                    }
                    if (!part.hashOk[i]) {
                        return broken(expectedSeq, lineNo, where + "hash does not match the record's content (edited or forged)");
                    }
                    if ("ledger.pruned".equals(r.event) && r.keptFromSeq == firstSeq && firstPrev.equals(r.keptFromPrev)) {
                        pruneAccounted = true;
                    }
                    if (visitor != null) {
                        visitor.record(r, all, part.start[i], part.end[i]);
                    }
                    prev = r.hash;
                    expectedSeq++;
                }
            }
        }
        if (!pruneAccounted) {
            return broken(firstSeq, 1, segments.get(0).getFileName() + " starts at record " + firstSeq
                    + " and no ledger.pruned record accounts for the records before it (deleted)");
        }
        return new Result(true, expectedSeq - 1, 0, 0, null, prev);
    }

    /** The first record's fields (its seq and prev say where a pruned chain starts), or null. */
    private static Fields firstRecord(Path seg) throws IOException {
        try (java.io.BufferedReader in = Files.newBufferedReader(seg, StandardCharsets.UTF_8)) {
            for (String l; (l = in.readLine()) != null; ) {
                if (!l.isBlank()) {
                    byte[] b = l.getBytes(StandardCharsets.UTF_8);
                    return Fields.read(b, 0, b.length);
                }
            }
            return null;
        }
    }

    private static java.security.MessageDigest sha256() {
        try {
            return java.security.MessageDigest.getInstance("SHA-256");
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The lines that start in [{@code from}, {@code to}) of a segment's bytes, each read and its hash
     * checked: the work of one core. A line ends at its newline (excluded); a last line without one
     * is a torn tail (not read).
     */
    private static final class Lines {
        int count;
        int[] start = new int[256];
        int[] end = new int[256];
        Fields[] fields = new Fields[256];
        boolean[] hashOk = new boolean[256];
        boolean torn;

        static Lines read(byte[] all, int from, int to) {
            Lines out = new Lines();
            java.security.MessageDigest sha = sha256();
            int s = from;
            if (s > 0 && all[s - 1] != '\n') {   // the line under way is the previous part's
                while (s < all.length && all[s] != '\n') {
                    s++;
                }
                s++;
            }
            while (s < to && s < all.length) {
                int e = s;
                while (e < all.length && all[e] != '\n') {
                    e++;
                }
                out.add(s, e);
                if (e == all.length) {
                    out.torn = true;
                    break;
                }
                Fields f = Fields.read(all, s, e);
                out.fields[out.count - 1] = f;
                out.hashOk[out.count - 1] = f != null && f.hash != null && f.hashMatches(all, s, e, sha);
                s = e + 1;
            }
            return out;
        }

        private void add(int s, int e) {
            if (count == start.length) {
                int n = count * 2;
                start = java.util.Arrays.copyOf(start, n);
                end = java.util.Arrays.copyOf(end, n);
                fields = java.util.Arrays.copyOf(fields, n);
                hashOk = java.util.Arrays.copyOf(hashOk, n);
            }
            start[count] = s;
            end[count] = e;
            count++;
        }
    }

    /**
     * The fields the chain needs, read from a record's line with a streaming parser (no map, no
     * re-serialisation): the common case costs one SHA-256 of the line's bytes. Its {@code hash}
     * holds when SHA-256 of the line without the hash member equals it (the ledger writes records in
     * canonical form); a line in another form (reformatted, yet the same content) is checked the slow
     * way, by its canonical form.
     */
    public static final class Fields {
        long seq = Long.MIN_VALUE;
        String prev;
        String hash;
        String event;
        /** What {@code audit show} filters on, read in the same pass. */
        String workload;
        String spiffeId;
        String key;
        String ts;
        String fingerprint;
        long pid = Long.MIN_VALUE;
        long keptFromSeq = Long.MIN_VALUE;
        String keptFromPrev;
        /** The hash member's span in the line ([from, to), its separating comma included), or -1. */
        int hashFrom = -1;
        int hashTo = -1;

        static Fields read(byte[] buf, int start, int end) {
            Fields quick = FlatRecord.read(buf, start, end);
            return quick != null ? quick : readWithParser(buf, start, end);
        }

        /** The general reader (any valid JSON object); null when the line is not one. */
        static Fields readWithParser(byte[] buf, int start, int end) {
            Fields f = new Fields();
            try (com.fasterxml.jackson.core.JsonParser p = Canonical.mapper().getFactory().createParser(buf, start, end - start)) {
                if (p.nextToken() != com.fasterxml.jackson.core.JsonToken.START_OBJECT) {
                    return null;
                }
                com.fasterxml.jackson.core.JsonToken t;
                while ((t = p.nextToken()) == com.fasterxml.jackson.core.JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    int nameAt = start + (int) p.currentTokenLocation().getByteOffset();
                    com.fasterxml.jackson.core.JsonToken v = p.nextToken();
                    switch (name) {
                        case "seq" -> f.seq = v == com.fasterxml.jackson.core.JsonToken.VALUE_NUMBER_INT ? p.getLongValue()
                                : Long.MIN_VALUE + 1;
                        case "prev" -> f.prev = v == com.fasterxml.jackson.core.JsonToken.VALUE_STRING ? p.getText() : null;
                        case "hash" -> {
                            f.hash = v == com.fasterxml.jackson.core.JsonToken.VALUE_STRING ? p.getText() : null;
                            f.hashFrom = nameAt;
                            f.hashTo = start + (int) p.currentLocation().getByteOffset();
                        }
                        case "event" -> f.event = v == com.fasterxml.jackson.core.JsonToken.VALUE_STRING ? p.getText() : null;
                        case "workload" -> f.workload = v == com.fasterxml.jackson.core.JsonToken.VALUE_STRING ? p.getText()
                                : null;
                        case "spiffe_id" -> f.spiffeId = v == com.fasterxml.jackson.core.JsonToken.VALUE_STRING ? p.getText()
                                : null;
                        case "key" -> f.key = v == com.fasterxml.jackson.core.JsonToken.VALUE_STRING ? p.getText() : null;
                        case "ts" -> f.ts = v == com.fasterxml.jackson.core.JsonToken.VALUE_STRING ? p.getText() : null;
                        case "fingerprint" -> f.fingerprint = v == com.fasterxml.jackson.core.JsonToken.VALUE_STRING
                                ? p.getText() : null;
                        case "pid" -> f.pid = v == com.fasterxml.jackson.core.JsonToken.VALUE_NUMBER_INT ? p.getLongValue()
                                : Long.MIN_VALUE;
                        case "kept_from_seq" -> f.keptFromSeq = v == com.fasterxml.jackson.core.JsonToken.VALUE_NUMBER_INT
                                ? p.getLongValue() : Long.MIN_VALUE;
                        case "kept_from_prev" -> f.keptFromPrev = v == com.fasterxml.jackson.core.JsonToken.VALUE_STRING
                                ? p.getText() : null;
                        default -> p.skipChildren();
                    }
                }
                if (t != com.fasterxml.jackson.core.JsonToken.END_OBJECT || p.nextToken() != null) {
                    return null;
                }
            } catch (IOException e) {
                return null;
            }
            return f;
        }

        boolean hashMatches(byte[] buf, int start, int end) {
            return hashMatches(buf, start, end, sha256());
        }

        /** With {@code d}, a SHA-256 digest this thread reuses (reset here). */
        boolean hashMatches(byte[] buf, int start, int end, java.security.MessageDigest d) {
            if (hashFrom >= start && hashTo <= end && hash.length() == 64) {
                // Drop the member and one comma beside it: the one after it, else the one before.
                int from = hashFrom;
                int to = hashTo;
                if (to < end && buf[to] == ',') {
                    to++;
                } else if (from > start && buf[from - 1] == ',') {
                    from--;
                }
                d.reset();
                d.update(buf, start, from - start);
                d.update(buf, to, end - to);
                if (hexEquals(d.digest(), hash)) {
                    return true;
                }
            }
            // Not in canonical form as written: the content's canonical form decides.
            try {
                Map<String, Object> r = Canonical.mapper().readValue(buf, start, end - start, MAP);
                return hash.equals(Canonical.hash(r));
            } catch (IOException e) {
                return false;
            }
        }
    }

    /** {@code hex} (lower case, as the ledger writes it) spells {@code digest}. */
    static boolean hexEquals(byte[] digest, String hex) {
        if (hex.length() != digest.length * 2) {
            return false;
        }
        for (int i = 0; i < digest.length; i++) {
            int b = digest[i] & 0xff;
            if (hex.charAt(2 * i) != HEX[b >>> 4] || hex.charAt(2 * i + 1) != HEX[b & 0xf]) {
                return false;
            }
        }
        return true;
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private static Result broken(long record, long line, String reason) {
        return new Result(false, record - 1, record, line, reason);
    }
}
