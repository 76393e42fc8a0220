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
        assertFalse(feed("application/json", huge, 1 << 16).found(), "bodies above the bound are not parsed");
        assertFalse(feed("application/json", "{\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":\"x\"}}", 8).found());
    }
}
