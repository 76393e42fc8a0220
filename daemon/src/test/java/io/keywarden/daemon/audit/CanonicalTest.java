package io.keywarden.daemon.audit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The ledger's one-pass seal gives exactly the bytes of the two-pass form its verifiers recompute. */
class CanonicalTest {

    /** The form {@code audit verify} checks: hash over the record without {@code hash}, line with it. */
    static void assertSealedAsBefore(Map<String, Object> record) throws Exception {
        Canonical.Sealed sealed = Canonical.seal(record, MessageDigest.getInstance("SHA-256"));
        String hash = Canonical.hash(record);
        Map<String, Object> withHash = new TreeMap<>(record);
        withHash.put("hash", hash);
        assertEquals(hash, sealed.hash(), "hash of " + record.keySet());
        assertArrayEquals((Canonical.json(withHash) + "\n").getBytes(StandardCharsets.UTF_8), sealed.line(),
                "line of " + record.keySet());
    }

    @Test
    void aLedgerRecordSealsAsTheVerifierRecomputesIt() throws Exception {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("seq", 12L);
        r.put("ts", "2026-12-04T10:00:00.123Z");
        r.put("event", "key.issued");
        r.put("node", "node-a");
        r.put("prev", "0".repeat(64));
        r.put("workload", "wörk \"quoted\" \\ \u0001 line\nbreak");
        r.put("ttl_seconds", 30);
        r.put("revocable", true);
        r.put("models", List.of("gpt-4o", "o3"));
        r.put("detail", Map.of("z", 1, "a", Map.of("y", "x", "b", 2.5)));
        r.put("nothing", null);
        r.put("big", Long.MAX_VALUE);
        r.put("ratio", 0.1);
        r.put("lone", "\ud800 half a pair, \u2028 and emoji \ud83d\ude00");
        r.put("instant", java.time.Instant.parse("2026-12-04T10:00:00Z").toString());
        assertSealedAsBefore(r);
    }

    @Test
    void recordsWithNothingOnOneSideOfTheHashSealTheSame() throws Exception {
        assertSealedAsBefore(Map.of("seq", 1L, "ts", "t"));
        assertSealedAsBefore(Map.of("event", "a", "fingerprint", "sha256:0"));
        assertSealedAsBefore(Map.of());
        assertSealedAsBefore(Map.of("h", 1, "hasH", 2, "hash0", 3, "hasg", 4));
    }

    @Test
    void aHashFieldAlreadyThereIsReplacedNotHashed() throws Exception {
        Map<String, Object> r = new TreeMap<>(Map.of("event", "e", "seq", 2L, "hash", "forged"));
        Canonical.Sealed sealed = Canonical.seal(r, MessageDigest.getInstance("SHA-256"));
        assertEquals(Canonical.hash(r), sealed.hash());
        assertSealedAsBefore(r);
    }

    @Test
    void randomRecordsSealAsTheVerifierRecomputesThem() throws Exception {
        java.util.Random rnd = new java.util.Random(42);
        String[] keys = {"seq", "ts", "event", "node", "prev", "hash", "a", "h", "hasi", "hash_", "z", "workload", "key"};
        for (int n = 0; n < 500; n++) {
            Map<String, Object> r = new LinkedHashMap<>();
            for (String k : keys) {
                switch (rnd.nextInt(7)) {
                    case 0 -> r.put(k, "v" + rnd.nextInt(1000) + (char) rnd.nextInt(0x3000));
                    case 1 -> r.put(k, rnd.nextInt());
                    case 2 -> r.put(k, rnd.nextLong());
                    case 3 -> r.put(k, rnd.nextBoolean());
                    case 4 -> r.put(k, List.of("x", rnd.nextInt(9)));
                    case 5 -> r.put(k, Map.of("q", rnd.nextDouble(), "b", "c"));
                    default -> {
                    }
                }
            }
            assertSealedAsBefore(r);
        }
    }

    @Test
    void theHeadLineIsTheFormattedOne() {
        String hash = "ab".repeat(32);
        for (long seq : new long[] {0, 1, 9, 10, 123456789, Long.MAX_VALUE}) {
            assertArrayEquals(String.format("%020d:%s\n", seq, hash).getBytes(StandardCharsets.US_ASCII),
                    Ledger.headLine(seq, hash), "seq " + seq);
        }
    }
}
