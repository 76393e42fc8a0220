package io.keywarden.daemon.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;

class RequestFactsTest {
    private static final ObjectMapper TREE = new ObjectMapper();

    private static RequestFacts read(String body, int pad) throws IOException {
        // At an offset inside a larger array, as a pooled buffer would hold it.
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        byte[] in = new byte[b.length + 2 * pad];
        java.util.Arrays.fill(in, (byte) '#');
        System.arraycopy(b, 0, in, pad, b.length);
        return RequestFacts.read(in, pad, b.length);
    }

    @Test
    void whatARequestNames() throws Exception {
        RequestFacts f = read("{\"model\":\"gpt-4.1\",\"messages\":[{\"role\":\"user\",\"content\":\"hi \\\"there\\\"\"}],"
                + "\"max_tokens\":20,\"n\":3,\"stream\":true}", 5);
        assertEquals("gpt-4.1", f.model);
        assertEquals(20, f.outputLimit());
        assertEquals(3, f.choices());
        assertEquals(true, f.stream);
        assertEquals(RequestFacts.Options.ABSENT, f.streamOptions);
        assertEquals(0, f.openAt);
        assertEquals(4, read("  \n {\"a\":1}", 7).openAt, "the brace after leading whitespace, from the body's start");
        byte[] bom = "\uFEFF{\"stream\":true}".getBytes(StandardCharsets.UTF_8);
        assertEquals(3, RequestFacts.read(bom, 0, bom.length).openAt, "after a UTF-8 byte order mark");
        for (java.nio.charset.Charset cs : new java.nio.charset.Charset[] {StandardCharsets.UTF_16BE,
            StandardCharsets.UTF_16LE}) {
            byte[] wide = "{\"model\":\"m\",\"stream\":true}".getBytes(cs);
            RequestFacts w = RequestFacts.read(wide, 0, wide.length);
            assertEquals("m", w.model, "Jackson reads " + cs);
            assertEquals(-1, w.openAt, "no byte insertion into " + cs);
        }
    }

    @Test
    void notJsonIsAnErrorAndNotAnObjectIsNoFacts() throws Exception {
        assertThrows(IOException.class, () -> read("{\"model\":\"m\",", 0));
        assertThrows(IOException.class, () -> read("{\"model\":\"m\"]", 0));
        assertThrows(IOException.class, () -> read("{\"messages\":[{\"content\":\"x\"}, oops]}", 3));
        assertThrows(IOException.class, () -> read("[1,2", 0));
        assertEquals(false, read("[{\"model\":\"m\"}]", 0).object);
        assertEquals(false, read("   ", 0).object);
    }

    /**
     * Against Jackson's tree, as the gateway read requests before: 20,000 generated bodies (the
     * fields read, given twice, of every type, inside decoys, with long and escaped strings) must
     * give the same model, worst case and stream decision; malformed ones must fail both ways.
     */
    @Test
    void readsWhatATreeReads() throws Exception {
        Random r = new Random(19);
        for (int i = 0; i < 20_000; i++) {
            String body = object(r, 0);
            if (r.nextInt(20) == 0) {
                body = body.substring(0, r.nextInt(body.length()));
            }
            JsonNode tree;
            try {
                tree = TREE.readTree(body);
            } catch (IOException e) {
                String b = body;
                assertThrows(IOException.class, () -> read(b, 1), body);
                continue;
            }
            RequestFacts f = read(body, r.nextInt(4));
            boolean object = tree != null && tree.isObject();
            assertEquals(object, f.object, body);
            if (!object) {
                continue;
            }
            String model = tree.hasNonNull("model") && tree.get("model").isTextual() ? tree.get("model").asText() : null;
            assertEquals(model, f.model, body);
            assertEquals(worstCase(tree, 100, 4096), GatewayServer.worstCase(f, 100, 4096), body);
            assertEquals(tree.path("stream").asBoolean(false), f.stream, body);
            JsonNode opts = tree.get("stream_options");
            RequestFacts.Options kind = opts == null ? RequestFacts.Options.ABSENT : opts.isNull()
                    ? RequestFacts.Options.NULL : opts.isObject() ? RequestFacts.Options.OBJECT : RequestFacts.Options.OTHER;
            assertEquals(kind, f.streamOptions, body);
            if (kind == RequestFacts.Options.OBJECT) {
                assertEquals(opts.path("include_usage").asBoolean(false), f.includeUsage, body);
            }
        }
    }

    /** The worst case as the gateway computed it from the tree. */
    private static long worstCase(JsonNode json, long bodyBytes, long defaultOut) {
        long out = -1;
        for (String f : new String[] {"max_tokens", "max_completion_tokens", "max_output_tokens"}) {
            JsonNode v = json.get(f);
            if (v != null && v.canConvertToLong() && v.asLong() > 0) {
                out = Math.max(out, v.asLong());
            }
        }
        if (out < 0) {
            out = defaultOut;
        }
        long n = 1;
        if (json.path("n").canConvertToInt() && json.path("n").asInt() > 1) {
            n = Math.min(128, json.path("n").asInt());
        }
        return bodyBytes + Math.min(out, 100_000_000L) * n;
    }

    private static final String[] NAMES = {"model", "max_tokens", "max_completion_tokens", "max_output_tokens", "n",
        "stream", "stream_options", "include_usage", "messages", "temperature"};

    private static String object(Random r, int depth) {
        StringBuilder b = new StringBuilder(r.nextBoolean() ? "{" : " \n{");
        int n = r.nextInt(depth == 0 ? 7 : 4);
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                b.append(',');
            }
            b.append('"').append(NAMES[r.nextInt(NAMES.length)]).append("\":").append(value(r, depth + 1));
        }
        return b.append('}').toString();
    }

    private static String value(Random r, int depth) {
        return switch (r.nextInt(depth < 4 ? 14 : 10)) {
            case 0, 1 -> Long.toString(r.nextInt(5000) - 100);
            case 2 -> (r.nextInt(4000) / 4.0 - 10) + "";
            case 3 -> "\"" + (r.nextBoolean() ? "gpt-" + r.nextInt(9) : r.nextBoolean() ? "true" : " true ") + "\"";
            case 4 -> r.nextBoolean() ? "true" : r.nextBoolean() ? "false" : "null";
            case 5 -> "0";
            case 6 -> r.nextBoolean() ? "99999999999999999999" : "3000000000";
            case 7 -> "\"caf\\u00e9 \\\"quoted\\\" " + "x".repeat(r.nextInt(3) == 0 ? 300 : 2) + "\"";
            case 8 -> "1e30";
            case 9 -> "-0";
            case 10, 11, 12 -> object(r, depth);
            default -> "[" + value(r, depth + 1) + "," + object(r, depth + 1) + "]";
        };
    }
}
