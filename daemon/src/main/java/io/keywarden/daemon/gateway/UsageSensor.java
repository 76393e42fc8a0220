package io.keywarden.daemon.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Reads token usage from an upstream answer as it streams past, without holding it back: a JSON
 * body is copied (up to {@link #MAX_JSON}) and parsed at its end; a server-sent event stream is
 * parsed line by line, and only {@code data:} lines that mention usage are parsed at all.
 *
 * <p>Understood: OpenAI's {@code usage.prompt_tokens}/{@code completion_tokens} (chat completions,
 * and the last chunk of a stream with {@code stream_options.include_usage}), {@code input_tokens}/
 * {@code output_tokens} (the Responses API, its {@code response.completed} event, and Anthropic's
 * messages), Anthropic's stream ({@code message_start} carries the input tokens, each
 * {@code message_delta} the cumulative output tokens). The model is the one the answer names.
 * Nothing of the content is kept: each line is dropped once looked at.
 */
final class UsageSensor {
    static final int MAX_JSON = 8 << 20;
    static final int MAX_LINE = 1 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final boolean sse;
    private final ByteArrayOutputStream buf = new ByteArrayOutputStream();
    private boolean overflow;
    private long input = -1;
    private long output = -1;
    private String model;

    UsageSensor(String contentType) {
        String ct = contentType == null ? "" : contentType.toLowerCase(java.util.Locale.ROOT);
        this.sse = ct.startsWith("text/event-stream");
    }

    /** Whether the answer is a server-sent event stream. */
    boolean isStream() {
        return sse;
    }

    void feed(byte[] chunk) {
        if (!sse) {
            if (!overflow && buf.size() + chunk.length <= MAX_JSON) {
                buf.write(chunk, 0, chunk.length);
            } else {
                overflow = true;
                buf.reset();
            }
            return;
        }
        int from = 0;
        for (int i = 0; i < chunk.length; i++) {
            if (chunk[i] == '\n') {
                if (!overflow) {
                    buf.write(chunk, from, i - from);
                    line(buf.toString(StandardCharsets.UTF_8));
                }
                buf.reset();
                overflow = false;
                from = i + 1;
            }
        }
        if (from < chunk.length && !overflow) {
            if (buf.size() + chunk.length - from > MAX_LINE) {
                overflow = true;
                buf.reset();
            } else {
                buf.write(chunk, from, chunk.length - from);
            }
        }
    }

    /** Called at the end of the answer. */
    void end() {
        if (sse) {
            if (!overflow && buf.size() > 0) {
                line(buf.toString(StandardCharsets.UTF_8));
            }
        } else if (!overflow && buf.size() > 0) {
            try {
                read(JSON.readTree(buf.toByteArray()));
            } catch (java.io.IOException e) {
                // not JSON: no usage
            }
        }
        buf.reset();
    }

    private void line(String l) {
        if (!l.startsWith("data:") || !(l.contains("usage") || l.contains("\"model\""))) {
            return;
        }
        String data = l.substring(5).trim();
        if (data.isEmpty() || data.equals("[DONE]")) {
            return;
        }
        try {
            JsonNode n = JSON.readTree(data);
            read(n);
            // Anthropic: message_start {message: {model, usage}}; the Responses API: response.completed {response: {usage}}.
            if (n.has("message")) {
                read(n.get("message"));
            }
            if (n.has("response")) {
                read(n.get("response"));
            }
        } catch (java.io.IOException e) {
            // not JSON: ignored
        }
    }

    private void read(JsonNode n) {
        if (n == null || !n.isObject()) {
            return;
        }
        if (n.hasNonNull("model") && n.get("model").isTextual() && n.get("model").asText().length() <= 200) {
            model = n.get("model").asText();
        }
        JsonNode u = n.get("usage");
        if (u == null || !u.isObject()) {
            return;
        }
        long in = first(u, "prompt_tokens", "input_tokens");
        long out = first(u, "completion_tokens", "output_tokens");
        // Anthropic counts cache reads and writes apart from input_tokens; they are tokens used all the same.
        long cached = Math.max(0, u.path("cache_creation_input_tokens").asLong(0))
                + Math.max(0, u.path("cache_read_input_tokens").asLong(0));
        if (in >= 0) {
            input = Math.max(input, in + cached);
        }
        if (out >= 0) {
            output = Math.max(output, out);
        }
    }

    private static long first(JsonNode u, String a, String b) {
        JsonNode v = u.has(a) ? u.get(a) : u.get(b);
        return v != null && v.canConvertToLong() && v.asLong() >= 0 ? v.asLong() : -1;
    }

    /** Whether the answer reported any usage. */
    boolean found() {
        return input >= 0 || output >= 0;
    }

    long inputTokens() {
        return Math.max(0, input);
    }

    long outputTokens() {
        return Math.max(0, output);
    }

    String model() {
        return model;
    }
}
