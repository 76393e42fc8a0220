package io.keywarden.daemon.gateway;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.async.ByteArrayFeeder;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * Reads token usage from an upstream answer as it streams past, without holding it back or copying
 * it: a JSON body is read token by token as its chunks arrive (Jackson's non-blocking parser, up to
 * {@link #MAX_JSON} bytes), building nothing but the few numbers and the model it looks for; a
 * server-sent event stream is split into lines, and only {@code data:} lines that mention usage are
 * read at all, the same way.
 *
 * <p>Understood: OpenAI's {@code usage.prompt_tokens}/{@code completion_tokens} (chat completions,
 * and the last chunk of a stream with {@code stream_options.include_usage}), {@code input_tokens}/
 * {@code output_tokens} (the Responses API, its {@code response.completed} event, and Anthropic's
 * messages), Anthropic's stream ({@code message_start} carries the input tokens, each
 * {@code message_delta} the cumulative output tokens). The model is the one the answer names. A
 * document counts only once it has been read to its end (a truncated or malformed one reports
 * nothing). Nothing of the content is kept: each value not looked for is skipped as it passes.
 */
final class UsageSensor {
    static final int MAX_JSON = 8 << 20;
    static final int MAX_LINE = 1 << 20;
    private static final JsonFactory JSON = new JsonFactory();

    private final boolean sse;
    /** The line being assembled (server-sent events only). */
    private final ByteArrayOutputStream line = new ByteArrayOutputStream();
    /** The JSON body's reader, null once it has ended, failed or passed {@link #MAX_JSON}. */
    private Doc body;
    private long bodyBytes;
    private boolean overflow;
    private long input = -1;
    private long output = -1;
    private String model;

    UsageSensor(String contentType) {
        String ct = contentType == null ? "" : contentType.toLowerCase(java.util.Locale.ROOT);
        this.sse = ct.startsWith("text/event-stream");
        if (!sse) {
            try {
                body = new Doc(JSON.createNonBlockingByteArrayParser());
            } catch (IOException e) {
                body = null;
            }
        }
    }

    /** Whether the answer is a server-sent event stream. */
    boolean isStream() {
        return sse;
    }

    void feed(byte[] chunk) {
        if (!sse) {
            if (body == null) {
                return;
            }
            bodyBytes += chunk.length;
            if (bodyBytes > MAX_JSON) {
                body.close();
                body = null;
                return;
            }
            ByteArrayFeeder in = (ByteArrayFeeder) body.parser.getNonBlockingInputFeeder();
            try {
                in.feedInput(chunk, 0, chunk.length);
                if (body.read()) {
                    take(body);
                    body.close();
                    body = null;
                }
            } catch (IOException | RuntimeException e) {
                // not JSON: no usage
                body.close();
                body = null;
            }
            return;
        }
        int from = 0;
        for (int i = 0; i < chunk.length; i++) {
            if (chunk[i] == '\n') {
                if (!overflow) {
                    line.write(chunk, from, i - from);
                    line(line.toString(StandardCharsets.UTF_8));
                }
                line.reset();
                overflow = false;
                from = i + 1;
            }
        }
        if (from < chunk.length && !overflow) {
            if (line.size() + chunk.length - from > MAX_LINE) {
                overflow = true;
                line.reset();
            } else {
                line.write(chunk, from, chunk.length - from);
            }
        }
    }

    /** Called at the end of the answer. */
    void end() {
        if (sse) {
            if (!overflow && line.size() > 0) {
                line(line.toString(StandardCharsets.UTF_8));
            }
            line.reset();
        } else if (body != null) {
            // A body that ended before its document did reports nothing.
            body.close();
            body = null;
        }
    }

    private void line(String l) {
        if (!l.startsWith("data:") || !(l.contains("usage") || l.contains("\"model\""))) {
            return;
        }
        String data = l.substring(5).trim();
        if (data.isEmpty() || data.equals("[DONE]")) {
            return;
        }
        try (JsonParser p = JSON.createParser(data)) {
            Doc d = new Doc(p);
            if (d.read()) {
                take(d);
            }
        } catch (IOException | RuntimeException e) {
            // not JSON: ignored
        }
    }

    /** A document read to its end: its usage counts, and its model (if it names one) is the answer's. */
    private void take(Doc d) {
        for (Scope s : d.scopes) {
            if (!s.object) {
                continue;
            }
            long in = s.prompt.present ? s.prompt.count() : s.inputTokens.count();
            long out = s.completion.present ? s.completion.count() : s.outputTokens.count();
            // Anthropic counts cache reads and writes apart from input_tokens; they are tokens used all the same.
            long cached = Math.max(0, s.cacheCreation.asLong()) + Math.max(0, s.cacheRead.asLong());
            if (in >= 0) {
                input = Math.max(input, in + cached);
            }
            if (out >= 0) {
                output = Math.max(output, out);
            }
        }
        // The most specific scope that names a model wins: the Responses API's response, Anthropic's message, the top.
        for (int i = d.scopes.length - 1; i >= 0; i--) {
            if (d.scopes[i].model != null) {
                model = d.scopes[i].model;
                break;
            }
        }
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

    /** One usage number as the document gave it. */
    private static final class Count {
        boolean present;
        /** The value's token, or null when it had none of its own (an object or an array). */
        JsonToken kind;
        long value;
        String text;

        void reset() {
            present = false;
            kind = null;
            value = 0;
            text = null;
        }

        /** A whole number of tokens (a fraction dropped), or -1 when it is none. */
        long count() {
            return present && (kind == JsonToken.VALUE_NUMBER_INT || kind == JsonToken.VALUE_NUMBER_FLOAT) && value >= 0
                    ? value : -1;
        }

        /** Leniently, 0 for anything that is not a number (the counts Anthropic adds). */
        long asLong() {
            if (!present || kind == null) {
                return 0;
            }
            if (kind == JsonToken.VALUE_NUMBER_INT || kind == JsonToken.VALUE_NUMBER_FLOAT) {
                return value;
            }
            if (kind == JsonToken.VALUE_TRUE) {
                return 1;
            }
            if (kind == JsonToken.VALUE_STRING && text != null) {
                try {
                    return Long.parseLong(text.trim());
                } catch (NumberFormatException e) {
                    try {
                        double d = Double.parseDouble(text.trim());
                        return d > -9.2e18 && d < 9.2e18 ? (long) d : 0;
                    } catch (NumberFormatException notANumber) {
                        return 0;
                    }
                }
            }
            return 0;
        }
    }

    /** Where usage may be: the top object, its {@code message} (Anthropic), its {@code response} (Responses API). */
    private static final class Scope {
        /** Whether this scope was an object (the top always must be; the others may be absent or of another type). */
        boolean object;
        String model;
        final Count prompt = new Count();
        final Count inputTokens = new Count();
        final Count completion = new Count();
        final Count outputTokens = new Count();
        final Count cacheCreation = new Count();
        final Count cacheRead = new Count();

        void resetUsage() {
            prompt.reset();
            inputTokens.reset();
            completion.reset();
            outputTokens.reset();
            cacheCreation.reset();
            cacheRead.reset();
        }

        Count count(String name) {
            return switch (name) {
                case "prompt_tokens" -> prompt;
                case "input_tokens" -> inputTokens;
                case "completion_tokens" -> completion;
                case "output_tokens" -> outputTokens;
                case "cache_creation_input_tokens" -> cacheCreation;
                case "cache_read_input_tokens" -> cacheRead;
                default -> null;
            };
        }
    }

    /**
     * One JSON document read token by token: only values at the places usage lives are looked at;
     * everything else (the content) passes without being kept. A later duplicate of a name replaces
     * an earlier one, as a parsed tree would.
     */
    private static final class Doc {
        static final int TOP = 0;
        static final int MESSAGE = 1;
        static final int RESPONSE = 2;
        final JsonParser parser;
        final Scope[] scopes = {new Scope(), new Scope(), new Scope()};
        /** Containers open: 1 inside the top object. */
        private int depth;
        /** The scope (message, response) whose object is open at depth 2, or -1. */
        private int nested = -1;
        /** Whether the object open is a usage: the top's (its numbers at depth 2) or a scope's (depth 3). */
        private boolean inUsage;
        private String name;
        private boolean started;

        Doc(JsonParser parser) {
            this.parser = parser;
        }

        /** Reads what has arrived; true once the top object has ended (the document is whole). */
        boolean read() throws IOException {
            JsonToken t;
            while ((t = parser.nextToken()) != null && t != JsonToken.NOT_AVAILABLE) {
                if (!started) {
                    if (t != JsonToken.START_OBJECT) {
                        throw new IOException("the answer is not a JSON object");
                    }
                    started = true;
                    depth = 1;
                    scopes[TOP].object = true;
                    continue;
                }
                switch (t) {
                    case FIELD_NAME -> name = parser.currentName();
                    case START_OBJECT, START_ARRAY -> {
                        value(t);
                        boolean obj = t == JsonToken.START_OBJECT;
                        if (depth == 1 && "usage".equals(name)) {
                            inUsage = obj;
                        } else if (depth == 1 && scopeOf(name) >= 0) {
                            nested = obj ? scopeOf(name) : -1;
                        } else if (depth == 2 && nested >= 0 && !inUsage && "usage".equals(name)) {
                            inUsage = obj;
                        }
                        depth++;
                        name = null;
                    }
                    case END_OBJECT, END_ARRAY -> {
                        depth--;
                        if (depth == 0) {
                            return true;
                        }
                        if (depth == 1) {
                            inUsage = false;
                            nested = -1;
                        } else if (depth == 2 && nested >= 0) {
                            inUsage = false;
                        }
                        name = null;
                    }
                    default -> {
                        value(t);
                        name = null;
                    }
                }
            }
            return false;
        }

        private static int scopeOf(String name) {
            return "message".equals(name) ? MESSAGE : "response".equals(name) ? RESPONSE : -1;
        }

        /**
         * A value at the current depth under the current name (for a container, its start: what it
         * holds is then passed over unless it is a scope or a usage object). A later value of a name
         * replaces an earlier one, whatever its type.
         */
        private void value(JsonToken t) throws IOException {
            if (name == null) {
                return;
            }
            if (depth == 1) {
                int sc = scopeOf(name);
                if (sc >= 0) {
                    Scope s = scopes[sc];
                    s.object = t == JsonToken.START_OBJECT;
                    s.model = null;
                    s.resetUsage();
                    return;
                }
                if ("usage".equals(name)) {
                    scopes[TOP].resetUsage();
                    return;
                }
            }
            if (depth == 2 && nested >= 0 && !inUsage && "usage".equals(name)) {
                scopes[nested].resetUsage();
                return;
            }
            Scope m = depth == 1 ? scopes[TOP] : depth == 2 && nested >= 0 && !inUsage ? scopes[nested] : null;
            if (m != null && "model".equals(name)) {
                m.model = t == JsonToken.VALUE_STRING && parser.getTextLength() <= 200 ? parser.getText() : null;
                return;
            }
            Scope u = !inUsage ? null : depth == 2 && nested < 0 ? scopes[TOP] : depth == 3 && nested >= 0
                    ? scopes[nested] : null;
            Count c = u == null ? null : u.count(name);
            if (c == null) {
                return;
            }
            c.reset();
            c.present = true;
            c.kind = t.isStructStart() ? null : t;
            // Numbers from their text: Jackson 2.22's non-blocking parser, asked for a float's value
            // right after an integer beyond a long whose value nobody read, answers with that integer.
            if (t == JsonToken.VALUE_NUMBER_INT) {
                try {
                    c.value = Long.parseLong(parser.getText());
                } catch (NumberFormatException beyondALong) {
                    c.value = -1;
                }
            } else if (t == JsonToken.VALUE_NUMBER_FLOAT) {
                double d = Double.parseDouble(parser.getText());
                c.value = d > -9.2e18 && d < 9.2e18 ? (long) d : -1;
            } else if (t == JsonToken.VALUE_STRING) {
                c.text = parser.getTextLength() <= 32 ? parser.getText() : null;
            }
        }

        void close() {
            try {
                parser.close();
            } catch (IOException e) {
                // nothing held
            }
        }
    }
}
