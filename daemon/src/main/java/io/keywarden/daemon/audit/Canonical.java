package io.keywarden.daemon.audit;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/** The canonical form a record is hashed in: keys sorted, no whitespace, UTF-8. */
final class Canonical {
    static final String GENESIS = "0".repeat(64);

    private Canonical() {
    }

    /** Made on first use: a CLI call that reads a ledger of flat records never needs it (~50 ms at a cold start). */
    private static final class Mapper {
        static final ObjectMapper JSON = new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);
    }

    static ObjectMapper mapper() {
        return Mapper.JSON;
    }

    static String json(Map<String, Object> record) {
        try {
            return mapper().writeValueAsString(new TreeMap<>(record));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("record cannot be serialised: " + e.getOriginalMessage());
        }
    }

    /** A record sealed for the ledger: its hash and its line (the canonical JSON with that hash, then a newline). */
    record Sealed(String hash, byte[] line) {
    }

    /**
     * Seals a record with one serialisation: the sorted fields before {@code hash} and those after
     * it are written once each; the hashed form is the two halves joined, the line the two halves
     * with the hash between them — byte for byte what {@link #hash} and {@link #json} give
     * ({@code CanonicalTest}). {@code sha} is the caller's own digest (not shared between threads).
     */
    static Sealed seal(Map<String, Object> record, MessageDigest sha) {
        TreeMap<String, Object> sorted = new TreeMap<>(record);
        sorted.remove("hash");
        String before = members(sorted.headMap("hash"));
        String after = members(sorted.tailMap("hash", false));
        String unsigned = "{" + before + (before.isEmpty() || after.isEmpty() ? "" : ",") + after + "}";
        sha.reset();
        String hash = HexFormat.of().formatHex(sha.digest(unsigned.getBytes(StandardCharsets.UTF_8)));
        String line = "{" + before + (before.isEmpty() ? "" : ",") + "\"hash\":\"" + hash + "\""
                + (after.isEmpty() ? "" : ",") + after + "}\n";
        return new Sealed(hash, line.getBytes(StandardCharsets.UTF_8));
    }

    /** A sorted map's JSON without its braces ("" when empty). */
    private static String members(java.util.SortedMap<String, Object> part) {
        if (part.isEmpty()) {
            return "";
        }
        try {
            String whole = mapper().writeValueAsString(part);
            return whole.substring(1, whole.length() - 1);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("record cannot be serialised: " + e.getOriginalMessage());
        }
    }

    /** SHA-256 over the record without its {@code hash} field. */
    static String hash(Map<String, Object> record) {
        TreeMap<String, Object> without = new TreeMap<>(record);
        without.remove("hash");
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(json(without).getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
