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
    public record Result(boolean ok, long records, long brokenRecord, long line, String reason) {
        public String describe() {
            return ok ? "OK: " + records + " records" : "BROKEN at record " + brokenRecord + " (line " + line + "): " + reason;
        }
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
        return new Result(true, expectedSeq - 1, 0, 0, null);
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
