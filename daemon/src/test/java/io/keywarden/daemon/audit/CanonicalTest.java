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
    void theHeadLineIsTheFormattedOne() {
        String hash = "ab".repeat(32);
        for (long seq : new long[] {0, 1, 9, 10, 123456789, Long.MAX_VALUE}) {
            assertArrayEquals(String.format("%020d:%s\n", seq, hash).getBytes(StandardCharsets.US_ASCII),
                    Ledger.headLine(seq, hash), "seq " + seq);
        }
    }
}
