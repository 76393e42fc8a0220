package io.keywarden.daemon.audit;

import com.fasterxml.jackson.core.JsonGenerator;
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
     * Seals a record with one serialisation: the sorted fields are written once, noting where the
     * first field after {@code hash} starts; the hashed form is that text, the line the same text with
     * the hash put there — byte for byte what {@link #hash} and {@link #json} give
     * ({@code CanonicalTest}). Strings, numbers and booleans are written straight to Jackson's
     * generator (an {@code ObjectMapper} call per record was most of a record's cost); anything else
     * through the mapper. {@code sha} is the caller's own digest (not shared between threads).
     */
    static Sealed seal(Map<String, Object> record, MessageDigest sha) {
        TreeMap<String, Object> sorted = new TreeMap<>(record);
        sorted.remove("hash");
        java.io.StringWriter out = new java.io.StringWriter(512);
        int split = -1;
        boolean before = false;
        boolean after = false;
        try (JsonGenerator g = mapper().getFactory().createGenerator(out)) {
            g.writeStartObject();
            for (Map.Entry<String, Object> e : sorted.entrySet()) {
                if (split < 0 && e.getKey().compareTo("hash") > 0) {
                    g.flush();
                    split = out.getBuffer().length();
                }
                if (split < 0) {
                    before = true;
                } else {
                    after = true;
                }
                g.writeFieldName(e.getKey());
                Object v = e.getValue();
                if (v instanceof String str) {
                    g.writeString(str);
                } else if (v instanceof Integer i) {
                    g.writeNumber(i);
                } else if (v instanceof Long l) {
                    g.writeNumber(l);
                } else if (v instanceof Boolean b) {
                    g.writeBoolean(b);
                } else if (v == null) {
                    g.writeNull();
                } else {
                    mapper().writeValue(g, v);
                }
            }
            g.flush();
            if (split < 0) {
                split = out.getBuffer().length();
            }
            g.writeEndObject();
        } catch (java.io.IOException e) {
            throw new IllegalArgumentException("record cannot be serialised: " + e.getMessage());
        }
        String unsigned = out.toString();
        sha.reset();
        String hash = HexFormat.of().formatHex(sha.digest(unsigned.getBytes(StandardCharsets.UTF_8)));
        String line = unsigned.substring(0, split) + (before ? "," : "") + "\"hash\":\"" + hash + "\""
                + (!before && after ? "," : "") + unsigned.substring(split) + "\n";
        return new Sealed(hash, line.getBytes(StandardCharsets.UTF_8));
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
