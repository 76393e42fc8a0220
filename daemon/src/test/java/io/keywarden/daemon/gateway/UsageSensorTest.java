package io.keywarden.daemon.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class UsageSensorTest {
    /** Feeds {@code text} in pieces of {@code n} bytes, as the network would. */
    private static UsageSensor feed(String contentType, String text, int n) {
        UsageSensor s = new UsageSensor(contentType);
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < b.length; i += n) {
            s.feed(java.util.Arrays.copyOfRange(b, i, Math.min(b.length, i + n)));
        }
        s.end();
        return s;
    }

    @Test
    void openAiChatCompletion() {
        UsageSensor s = feed("application/json", "{\"model\":\"gpt-4.1-mini-2025-04-14\",\"choices\":[],"
                + "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7,\"total_tokens\":19}}", 5);
        assertTrue(s.found());
        assertEquals(12, s.inputTokens());
        assertEquals(7, s.outputTokens());
        assertEquals("gpt-4.1-mini-2025-04-14", s.model());
    }

    @Test
    void openAiStreamWithTheUsageChunkSplitAcrossReads() {
        String sse = "data: {\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
                + "data: {\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":9}}\n\n"
                + "data: [DONE]\n\n";
        for (int n : new int[] {1, 7, 64, 4096}) {
            UsageSensor s = feed("text/event-stream; charset=utf-8", sse, n);
            assertEquals(3, s.inputTokens(), "pieces of " + n);
            assertEquals(9, s.outputTokens());
            assertEquals("gpt-4o", s.model());
        }
    }

    @Test
    void anthropicStreamCountsStartAndCumulativeDeltas() {
        String sse = """
                event: message_start
                data: {"type":"message_start","message":{"model":"claude-sonnet-4-5","usage":{"input_tokens":25,"cache_read_input_tokens":100,"output_tokens":1}}}

                event: content_block_delta
                data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}

                event: message_delta
                data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}

                event: message_stop
                data: {"type":"message_stop"}
                """;
        UsageSensor s = feed("text/event-stream", sse, 11);
        assertEquals(125, s.inputTokens(), "cache reads are tokens used");
        assertEquals(15, s.outputTokens(), "message_delta's output_tokens is cumulative: the last one counts");
        assertEquals("claude-sonnet-4-5", s.model());
    }

    @Test
    void responsesApiCompletedEvent() {
        String sse = "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"gpt-5\","
                + "\"usage\":{\"input_tokens\":40,\"output_tokens\":2}}}\n\n";
        UsageSensor s = feed("text/event-stream", sse, 13);
        assertEquals(40, s.inputTokens());
        assertEquals(2, s.outputTokens());
        assertEquals("gpt-5", s.model());
    }

    @Test
    void garbageAndOversizeAreNoUsageNotAFailure() {
        assertFalse(feed("application/json", "{not json", 3).found());
        assertFalse(feed("text/event-stream", "data: {broken\n\ndata: [DONE]\n", 3).found());
        String huge = "{\"pad\":\"" + "x".repeat(UsageSensor.MAX_JSON) + "\",\"usage\":{\"prompt_tokens\":1}}";
        assertFalse(feed("application/json", "{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}", 4).found(),
                "a body cut before its document ends reports nothing");
        assertFalse(feed("application/json", "[{\"usage\":{\"prompt_tokens\":5}}]", 4).found(), "not an object");
        assertFalse(feed("application/json", huge, 1 << 16).found(), "bodies above the bound are not parsed");
        assertFalse(feed("application/json", "{\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":\"x\"}}", 8).found());
    }

    /**
     * The streaming reader against a parsed tree (the reader this one replaced, kept here as the
     * reference): 20,000 generated answers — usage at the top, in {@code message} and in
     * {@code response}, duplicated names, values of every type, nested decoys, long content — fed in
     * random pieces, as a JSON body and as a server-sent event, must report the same usage and model.
     */
    @Test
    void readsWhatAParsedTreeReads() throws Exception {
        java.util.Random r = new java.util.Random(25);
        for (int i = 0; i < 20_000; i++) {
            String doc = object(r, 0);
            Reference want = new Reference();
            want.read(doc);
            UsageSensor json = feed("application/json", doc, 1 + r.nextInt(r.nextBoolean() ? 8 : 400));
            assertEquals(want.found(), json.found(), doc);
            assertEquals(Math.max(0, want.input), json.inputTokens(), doc);
            assertEquals(Math.max(0, want.output), json.outputTokens(), doc);
            assertEquals(want.model, json.model(), doc);
            if (doc.contains("usage") || doc.contains("\"model\"")) {
                UsageSensor sse = feed("text/event-stream", "data: " + doc + "\n\n", 1 + r.nextInt(64));
                assertEquals(want.found(), sse.found(), doc);
                assertEquals(Math.max(0, want.input), sse.inputTokens(), doc);
                assertEquals(Math.max(0, want.output), sse.outputTokens(), doc);
                assertEquals(want.model, sse.model(), doc);
            }
        }
    }

    private static final String[] NAMES = {"model", "usage", "message", "response", "prompt_tokens", "input_tokens",
        "completion_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "choices", "id"};

    private static String object(java.util.Random r, int depth) {
        StringBuilder b = new StringBuilder("{");
        int n = r.nextInt(depth == 0 ? 6 : 5);
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                b.append(',');
            }
            b.append('"').append(NAMES[r.nextInt(NAMES.length)]).append("\":").append(value(r, depth + 1));
        }
        return b.append('}').toString();
    }

    private static String value(java.util.Random r, int depth) {
        int k = r.nextInt(depth < 4 ? 12 : 8);
        return switch (k) {
            case 0, 1 -> Long.toString(r.nextInt(5000) - (r.nextInt(10) == 0 ? 6000 : 0));
            case 2 -> (r.nextInt(2000) / 4.0) + "";
            case 3 -> "\"" + (r.nextBoolean() ? "gpt-" + r.nextInt(9) : Integer.toString(r.nextInt(90))) + "\"";
            case 4 -> r.nextBoolean() ? "true" : "null";
            case 5 -> "\"" + "x".repeat(r.nextInt(3) == 0 ? 250 : 3) + "\"";
            case 6 -> "99999999999999999999";
            case 7 -> "\"\\u00e9t\u00e9 \\\"q\\\"\"";
            case 8, 9, 10 -> object(r, depth);
            default -> "[" + value(r, depth + 1) + "," + object(r, depth + 1) + "]";
        };
    }

    /** The tree-based reading the sensor did before it streamed. */
    private static final class Reference {
        private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
                new com.fasterxml.jackson.databind.ObjectMapper();
        long input = -1;
        long output = -1;
        String model;

        boolean found() {
            return input >= 0 || output >= 0;
        }

        void read(String doc) throws Exception {
            com.fasterxml.jackson.databind.JsonNode n = JSON.readTree(doc);
            read(n);
            if (n.has("message")) {
                read(n.get("message"));
            }
            if (n.has("response")) {
                read(n.get("response"));
            }
        }

        private void read(com.fasterxml.jackson.databind.JsonNode n) {
            if (n == null || !n.isObject()) {
                return;
            }
            if (n.hasNonNull("model") && n.get("model").isTextual() && n.get("model").asText().length() <= 200) {
                model = n.get("model").asText();
            }
            com.fasterxml.jackson.databind.JsonNode u = n.get("usage");
            if (u == null || !u.isObject()) {
                return;
            }
            long in = first(u, "prompt_tokens", "input_tokens");
            long out = first(u, "completion_tokens", "output_tokens");
            long cached = Math.max(0, lenient(u.path("cache_creation_input_tokens")))
                    + Math.max(0, lenient(u.path("cache_read_input_tokens")));
            if (in >= 0) {
                input = Math.max(input, in + cached);
            }
            if (out >= 0) {
                output = Math.max(output, out);
            }
        }

        /**
         * asLong(0), except a number beyond a long: the tree's asLong wraps it (2^64 + n) into an
         * arbitrary count; the streaming reader counts it as 0, the one deliberate difference.
         */
        private static long lenient(com.fasterxml.jackson.databind.JsonNode v) {
            return v.isNumber() && !v.canConvertToLong() ? 0 : v.asLong(0);
        }

        private static long first(com.fasterxml.jackson.databind.JsonNode u, String a, String b) {
            com.fasterxml.jackson.databind.JsonNode v = u.has(a) ? u.get(a) : u.get(b);
            return v != null && v.canConvertToLong() && v.asLong() >= 0 ? v.asLong() : -1;
        }
    }
}
