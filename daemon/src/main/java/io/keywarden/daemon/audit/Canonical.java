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
