package io.keywarden.daemon.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The fast reader agrees with the general parser on every line it reads, and leaves the rest to it. */
class FlatRecordTest {
    private static final String CANONICAL = "{\"event\":\"access.granted\",\"exe\":\"/usr/bin/python3\",\"fingerprint\":"
            + "\"sha256:0123456789abcdef\",\"hash\":\"" + "a".repeat(64) + "\",\"key\":\"openai\",\"node\":\"n1\",\"pid\":42,"
            + "\"prev\":\"" + "0".repeat(64) + "\",\"reason\":\"workload w opened api_key\",\"repeats\":null,\"revocable\":false,"
            + "\"seq\":7,\"spiffe_id\":\"spiffe://t/w\",\"ts\":\"2026-12-04T06:53:36.011Z\",\"uid\":1001,\"workload\":\"w\"}";

    private static LedgerVerifier.Fields flat(String line) {
        byte[] b = line.getBytes(StandardCharsets.UTF_8);
        return FlatRecord.read(b, 0, b.length);
    }

    private static LedgerVerifier.Fields parsed(String line) {
        byte[] b = line.getBytes(StandardCharsets.UTF_8);
        return LedgerVerifier.Fields.readWithParser(b, 0, b.length);
    }

    private static List<Object> view(LedgerVerifier.Fields f) {
        return java.util.Arrays.asList(f.seq, f.prev, f.hash, f.event, f.workload, f.spiffeId, f.key, f.ts, f.fingerprint,
                f.pid, f.keptFromSeq, f.keptFromPrev, f.hashFrom, f.hashTo);
    }

    @Test
    void aCanonicalRecordIsReadAsTheParserReadsIt() {
        LedgerVerifier.Fields f = flat(CANONICAL);
        assertNotNull(f);
        assertEquals(view(parsed(CANONICAL)), view(f));
        String pruned = "{\"event\":\"ledger.pruned\",\"hash\":\"" + "b".repeat(64) + "\",\"kept_from_prev\":\"" + "c".repeat(64)
                + "\",\"kept_from_seq\":100,\"prev\":\"" + "d".repeat(64) + "\",\"seq\":101,\"ts\":\"2026-12-04T00:00:00Z\"}";
        assertEquals(view(parsed(pruned)), view(flat(pruned)));
        assertEquals(view(parsed("{}")), view(flat("{}")));
        assertEquals(view(parsed("{\"seq\":-1}")), view(flat("{\"seq\":-1}")));
    }

    @Test
    void whatItIsNotSureOfIsLeftToTheParser() {
        for (String line : List.of(
                CANONICAL.replace("opened api_key", "opened \\\"api_key\\\""),      // an escape
                CANONICAL.replace("opened api_key", "opened api_kéy"),            // non-ASCII
                CANONICAL.replace("\"repeats\":null", "\"repeats\":[1,2]"),      // nested
                CANONICAL.replace("\"repeats\":null", "\"repeats\":{\"a\":1}"),
                CANONICAL.replace("\"uid\":1001", "\"uid\":1.5"),                 // a fraction
                CANONICAL.replace("\"uid\":1001", "\"uid\":01001"),               // a leading zero
                CANONICAL.replace("\"uid\":1001", "\"uid\": 1001"),               // whitespace
                CANONICAL.replace("\"seq\":7", "\"seq\":\"7\""),                  // a read field of another type
                CANONICAL.replace("\"pid\":42", "\"pid\":42,\"seq\":8"),          // a read field twice
                CANONICAL + " ",                                                  // bytes after the object
                CANONICAL.substring(0, CANONICAL.length() - 1),                   // cut short
                "[1]", "", "{\"a\":tru}", "{\"a\":1,}")) {
            assertNull(flat(line), line);
        }
    }

    private static java.util.Map<String, Object> all(String line) {
        byte[] b = line.getBytes(StandardCharsets.UTF_8);
        return FlatRecord.readAll(b, 0, b.length);
    }

    /** What audit show prints: every member, as the general parser reads it (numbers compared by value). */
    @Test
    void everyMemberIsReadAsTheParserReadsIt() throws Exception {
        for (String line : List.of(CANONICAL, "{}", "{\"seq\":-12,\"ok\":true,\"no\":false,\"x\":null}")) {
            java.util.Map<String, Object> mine = all(line);
            assertNotNull(mine, line);
            java.util.Map<String, Object> theirs = Canonical.mapper().readValue(line,
                    new com.fasterxml.jackson.core.type.TypeReference<java.util.LinkedHashMap<String, Object>>() { });
            assertEquals(List.copyOf(theirs.keySet()), List.copyOf(mine.keySet()), "in the order written");
            theirs.forEach((k, v) -> assertEquals(v instanceof Number n ? (Object) n.longValue() : v, mine.get(k), k));
        }
    }

    @Test
    void allMembersGivesUpWhereTheFieldReaderDoes() {
        for (String line : List.of(
                CANONICAL.replace("opened api_key", "opened \\\"api_key\\\""),
                CANONICAL.replace("opened api_key", "opened api_kéy"),
                CANONICAL.replace("\"repeats\":null", "\"repeats\":[1,2]"),
                CANONICAL.replace("\"uid\":1001", "\"uid\":1.5"),
                CANONICAL.replace("\"uid\":1001", "\"uid\": 1001"),
                CANONICAL.replace("\"pid\":42", "\"pid\":42,\"exe\":\"x\""),   // any member twice
                CANONICAL + " ", CANONICAL.substring(0, CANONICAL.length() - 1),
                "[1]", "", "{\"a\":tru}", "{\"a\":1,}", "{\"a\"1}")) {
            assertNull(all(line), line);
        }
    }
}
