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
        Result r = verify(file);
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
        Map<String, Object> head = firstRecord(segments.get(0));
        if (head != null && head.get("seq") instanceof Number n && n.longValue() > 1 && head.get("prev") instanceof String hp) {
            firstSeq = n.longValue();
            firstPrev = hp;
            expectedSeq = firstSeq;
            prev = firstPrev;
        }
        boolean pruneAccounted = firstSeq == 1;
        for (Path seg : segments) {
            String where = segments.size() > 1 ? seg.getFileName() + " " : "";
            byte[] all = Files.readAllBytes(seg);
            String text = new String(all, StandardCharsets.UTF_8);
            boolean tornTail = !text.isEmpty() && !text.endsWith("\n");
            String[] lines = text.split("\n", -1);
            int count = text.isEmpty() ? 0 : (tornTail ? lines.length : lines.length - 1);
            for (int i = 0; i < count; i++) {
                long lineNo = i + 1;
                String line = lines[i];
                if (tornTail && i == count - 1) {
                    return broken(expectedSeq, lineNo, where + "truncated record (partial last line, a crash mid-write)");
                }
                Map<String, Object> r;
                try {
                    r = Canonical.JSON.readValue(line, MAP);
                } catch (IOException e) {
                    return broken(expectedSeq, lineNo, where + "not a JSON object");
                }
                Object seq = r.get("seq");
                if (!(seq instanceof Number n) || n.longValue() != expectedSeq) {
                    return broken(expectedSeq, lineNo, where + "seq is " + seq + ", expected " + expectedSeq
                            + " (a record was deleted, inserted or reordered)");
                }
                if (!prev.equals(r.get("prev"))) {
                    return broken(expectedSeq, lineNo, where + "prev does not match the previous record's hash"
                            + " (a record before it was changed, deleted or reordered)");
                }
                Object hash = r.get("hash");
                if (!(hash instanceof String h) || !h.equals(Canonical.hash(r))) {
                    return broken(expectedSeq, lineNo, where + "hash does not match the record's content (edited or forged)");
                }
                if ("ledger.pruned".equals(r.get("event")) && r.get("kept_from_seq") instanceof Number k
                        && k.longValue() == firstSeq && firstPrev.equals(r.get("kept_from_prev"))) {
                    pruneAccounted = true;
                }
                prev = h;
                expectedSeq++;
            }
        }
        if (!pruneAccounted) {
            return broken(firstSeq, 1, segments.get(0).getFileName() + " starts at record " + firstSeq
                    + " and no ledger.pruned record accounts for the records before it (deleted)");
        }
        return new Result(true, expectedSeq - 1, 0, 0, null, prev);
    }

    private static Map<String, Object> firstRecord(Path seg) throws IOException {
        try (var lines = Files.lines(seg)) {
            var l = lines.filter(x -> !x.isBlank()).findFirst();
            if (l.isEmpty()) {
                return null;
            }
            try {
                return Canonical.JSON.readValue(l.get(), MAP);
            } catch (IOException e) {
                return null;
            }
        }
    }

    private static Result broken(long record, long line, String reason) {
        return new Result(false, record - 1, record, line, reason);
    }
}
