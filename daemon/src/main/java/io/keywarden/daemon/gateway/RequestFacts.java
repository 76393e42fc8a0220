package io.keywarden.daemon.gateway;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;

/**
 * What the gateway needs of a JSON request body, read in one pass of Jackson's streaming parser
 * without building a tree: the body is checked to be JSON from end to end (the parser reads every
 * token; strings nobody asks for are skipped, never decoded), and of the top object only the model,
 * the output limits, {@code n}, {@code stream} and {@code stream_options} are kept. A name given
 * twice counts by its last value, as a parsed tree would have it.
 *
 * <p>The values are read as Jackson's tree would read them ({@code GatewayServer} did, and
 * {@code RequestFactsTest} holds this class to it on generated bodies): a limit counts when it is a
 * number that fits a long and is positive (a fraction dropped); {@code n} when it is a number that
 * fits an int; {@code stream} and {@code include_usage} are true for {@code true}, a non-zero
 * integer or the text "true".
 */
final class RequestFacts {
    private static final JsonFactory JSON = new JsonFactory();
    /** The fields in which the APIs the gateway fronts bound a request's output tokens. */
    private static final String[] OUTPUT_LIMITS = {"max_tokens", "max_completion_tokens", "max_output_tokens"};

    /** What {@code stream_options} was in the top object. */
    enum Options { ABSENT, NULL, OBJECT, OTHER }

    /** Whether the body is a JSON object at all (a tree's root an ObjectNode). */
    boolean object;
    /** The model the request names, or null (none, or not a string). */
    String model;
    /** Each output limit's value (-1: absent or not a count), in {@link #OUTPUT_LIMITS}' order. */
    final long[] limits = {-1, -1, -1};
    /** {@code n}, or -1 when absent or not an int. */
    long n = -1;
    boolean stream;
    Options streamOptions = Options.ABSENT;
    boolean includeUsage;
    /**
     * Where the top object's opening brace is, from the start of the bytes read; -1 when the body
     * is not plain UTF-8 there (Jackson also reads UTF-16 and UTF-32, where a byte is not a character).
     */
    int openAt = -1;

    private RequestFacts() {
    }

    /**
     * Reads {@code len} bytes of {@code body} from {@code off}. Throws what Jackson's parser throws
     * for a body that is not JSON (its message says where).
     */
    static RequestFacts read(byte[] body, int off, int len) throws IOException {
        RequestFacts f = new RequestFacts();
        try (JsonParser p = JSON.createParser(body, off, len)) {
            JsonToken t = p.nextToken();
            if (t == null) {
                return f;
            }
            if (t != JsonToken.START_OBJECT) {
                p.skipChildren();
                return f;
            }
            f.object = true;
            f.openAt = brace(body, off, len);
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                t = p.nextToken();
                switch (name) {
                    case "model" -> f.model = t == JsonToken.VALUE_STRING ? p.getText() : null;
                    case "max_tokens" -> f.limits[0] = count(p, t, Long.MAX_VALUE);
                    case "max_completion_tokens" -> f.limits[1] = count(p, t, Long.MAX_VALUE);
                    case "max_output_tokens" -> f.limits[2] = count(p, t, Long.MAX_VALUE);
                    case "n" -> f.n = count(p, t, Integer.MAX_VALUE);
                    case "stream" -> f.stream = truthy(p, t);
                    case "stream_options" -> {
                        f.includeUsage = false;
                        f.streamOptions = t == JsonToken.START_OBJECT ? Options.OBJECT
                                : t == JsonToken.VALUE_NULL ? Options.NULL : Options.OTHER;
                        if (t == JsonToken.START_OBJECT) {
                            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                                String inner = p.currentName();
                                t = p.nextToken();
                                if (inner.equals("include_usage")) {
                                    f.includeUsage = truthy(p, t);
                                }
                                p.skipChildren();
                            }
                            continue;
                        }
                    }
                    default -> {
                        // passed over below
                    }
                }
                p.skipChildren();
            }
            if (t != JsonToken.END_OBJECT) {
                throw new IOException("the request body ends inside its JSON object");
            }
        }
        return f;
    }

    /**
     * A number within [-max-1, max] (a fraction dropped), else -1: a tree's
     * {@code canConvertToLong}/{@code canConvertToInt} then {@code asLong}. Read from its text (see
     * {@link UsageSensor} on Jackson's cached number values).
     */
    private static long count(JsonParser p, JsonToken t, long max) throws IOException {
        if (t == JsonToken.VALUE_NUMBER_INT) {
            try {
                long v = Long.parseLong(p.getText());
                return v >= -max - 1 && v <= max ? v : -1;
            } catch (NumberFormatException beyondALong) {
                return -1;
            }
        }
        if (t == JsonToken.VALUE_NUMBER_FLOAT) {
            double d = Double.parseDouble(p.getText());
            return d >= -max - 1.0 && d <= max ? (long) d : -1;
        }
        return -1;
    }

    /** A tree's {@code asBoolean(false)}: true, a non-zero integer, or the text "true". */
    private static boolean truthy(JsonParser p, JsonToken t) throws IOException {
        return switch (t) {
            case VALUE_TRUE -> true;
            case VALUE_NUMBER_INT -> {
                String v = p.getText();
                yield !v.equals("0") && !v.equals("-0");
            }
            case VALUE_STRING -> p.getText().trim().equals("true");
            default -> false;
        };
    }

    /**
     * The top object's brace in a UTF-8 body: only whitespace or a byte order mark may precede it
     * (anything else would not have parsed), and the byte after it is not a zero (UTF-16's half).
     */
    private static int brace(byte[] body, int off, int len) {
        int i = off;
        if (len >= 3 && (body[off] & 0xff) == 0xEF && (body[off + 1] & 0xff) == 0xBB && (body[off + 2] & 0xff) == 0xBF) {
            i += 3;
        }
        for (; i < off + len; i++) {
            byte b = body[i];
            if (b == '{') {
                return i + 1 < off + len && body[i + 1] != 0 ? i - off : -1;
            }
            if (b != ' ' && b != '\t' && b != '\n' && b != '\r') {
                return -1;
            }
        }
        return -1;
    }

    /** The largest positive output limit the request names, or -1. */
    long outputLimit() {
        long out = -1;
        for (long v : limits) {
            if (v > 0) {
                out = Math.max(out, v);
            }
        }
        return out;
    }

    /** {@code n} when it asks for more than one choice, else 1. */
    long choices() {
        return n > 1 ? Math.min(128, n) : 1;
    }
}
