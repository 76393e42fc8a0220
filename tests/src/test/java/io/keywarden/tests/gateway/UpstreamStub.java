package io.keywarden.tests.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.testkit.HttpStub;
import io.keywarden.testkit.HttpStub.Answer;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Pattern;

/**
 * A local stand-in for OpenAI's chat completions, as strict as the real API on what it receives:
 * {@code Authorization: Bearer <key>} with a key that looks issued (401 {@code invalid_api_key}
 * otherwise, as OpenAI answers), a JSON body with {@code model} and {@code messages} (400 otherwise).
 * It answers with {@code usage} ({@code prompt_tokens} = {@link #PROMPT_TOKENS},
 * {@code completion_tokens} = {@link #COMPLETION_TOKENS}); with {@code stream: true} it streams
 * server-sent events chunk by chunk, {@link #CHUNK_DELAY_MS} apart, and adds the usage-only final
 * chunk only when {@code stream_options.include_usage} is set — as OpenAI does.
 * Every request's credential headers are kept (as fingerprints and raw, for the test to compare).
 */
public final class UpstreamStub implements AutoCloseable {
    static final int PROMPT_TOKENS = 30;
    static final int COMPLETION_TOKENS = 20;
    static final int CHUNK_DELAY_MS = 50;
    private static final Pattern ISSUED = Pattern.compile("Bearer (sk-dev-[A-Za-z0-9]{48})");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What arrived: authorization, x-api-key and api-key header values, the body. */
    record Seen(String authorization, String xApiKey, String apiKey, String body, String path) {
    }

    /** Every request in arrival order; empty when made {@link #unrecorded()}. */
    final List<Seen> seen = new CopyOnWriteArrayList<>();
    private final boolean record;
    private final HttpStub server;

    public UpstreamStub() throws IOException {
        this(null);
    }

    /** With {@code tls}, an HTTPS server (HTTP/1.1 only: ALPN offers of h2 fall back). */
    public UpstreamStub(javax.net.ssl.SSLContext tls) throws IOException {
        this(tls, true);
    }

    private UpstreamStub(javax.net.ssl.SSLContext tls, boolean record) throws IOException {
        this.record = record;
        HttpStub http = tls == null ? HttpStub.start() : HttpStub.startTls(tls);
        server = (record ? http : http.unrecorded()).on("/", this::answer);
    }

    /**
     * The same upstream keeping nothing of what it receives (nor its {@link HttpStub}), for a
     * benchmark's hundreds of thousands of requests: see {@link HttpStub#unrecorded()}.
     */
    public static UpstreamStub unrecorded() throws IOException {
        return new UpstreamStub(null, false);
    }

    public int port() {
        return server.port();
    }

    private Answer answer(HttpStub.Request x) throws IOException {
        String body = x.body();
        String auth = x.header("Authorization");
        if (record) {
            seen.add(new Seen(auth, x.header("x-api-key"), x.header("api-key"), body,
                    x.path() + (x.query() == null ? "" : "?" + x.query())));
        }
        if (x.path().equals("/v1/messages")) {
            return anthropic(x, body);
        }
        if (auth == null || !ISSUED.matcher(auth).matches()) {
            return Answer.json(401, "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":\"invalid_request_error\","
                    + "\"code\":\"invalid_api_key\"}}");
        }
        if (!x.path().equals("/v1/chat/completions")) {
            return Answer.json(404, "{\"error\":{\"message\":\"Unknown path\"}}");
        }
        JsonNode req;
        try {
            req = JSON.readTree(body);
        } catch (IOException e) {
            return Answer.json(400, "{\"error\":{\"message\":\"We could not parse the JSON body of your request.\"}}");
        }
        if (!req.path("model").isTextual() || !req.path("messages").isArray()) {
            return Answer.json(400, "{\"error\":{\"message\":\"you must provide a model and messages\"}}");
        }
        String model = req.get("model").asText();
        // As the provider does: no more output tokens than the request's limit.
        long limit = req.path("max_completion_tokens").asLong(req.path("max_tokens").asLong(Long.MAX_VALUE));
        long completion = Math.min(COMPLETION_TOKENS, limit);
        String usage = "{\"prompt_tokens\":" + PROMPT_TOKENS + ",\"completion_tokens\":" + completion
                + ",\"total_tokens\":" + (PROMPT_TOKENS + completion) + "}";
        if (!req.path("stream").asBoolean(false)) {
            return Answer.json(200, "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"" + model + "\","
                    + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hello\"},"
                    + "\"finish_reason\":\"stop\"}],\"usage\":" + usage + "}");
        }
        List<String> chunks = new ArrayList<>();
        for (String word : new String[] {"one", "two", "three", "four", "five"}) {
            chunks.add(event("{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"" + model
                    + "\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + word + " \"}}]}"));
        }
        // The usage-only chunk comes with the end of the stream, not one pause after the last word
        // (as OpenAI sends it): a gateway that asks for it adds no time to the stream.
        String end = "data: [DONE]\n\n";
        if (req.path("stream_options").path("include_usage").asBoolean(false)) {
            end = event("{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"" + model
                    + "\",\"choices\":[],\"usage\":" + usage + "}") + end;
        }
        chunks.add(end);
        return Answer.stream(200, Map.of("Content-Type", "text/event-stream; charset=utf-8"), chunks, CHUNK_DELAY_MS);
    }

    /**
     * Anthropic's Messages API as strict as it is on what it receives: the key in {@code x-api-key}
     * (401 {@code authentication_error} otherwise), an {@code anthropic-version} header (400
     * otherwise), {@code model}, {@code max_tokens} and {@code messages}; usage as
     * {@code input_tokens}/{@code output_tokens}.
     */
    private static Answer anthropic(HttpStub.Request x, String body) throws IOException {
        String key = x.header("x-api-key");
        if (key == null || !key.matches("sk-dev-[A-Za-z0-9]{48}")) {
            return Answer.json(401, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key\"}}");
        }
        if (x.header("anthropic-version") == null) {
            return Answer.json(400, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                    + "\"message\":\"anthropic-version: header is required\"}}");
        }
        JsonNode req = JSON.readTree(body);
        if (!req.path("model").isTextual() || !req.path("max_tokens").isInt() || !req.path("messages").isArray()) {
            return Answer.json(400, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                    + "\"message\":\"model, max_tokens and messages are required\"}}");
        }
        return Answer.json(200, "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\""
                + req.get("model").asText() + "\",\"content\":[{\"type\":\"text\",\"text\":\"hello\"}],"
                + "\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":" + PROMPT_TOKENS
                + ",\"output_tokens\":" + COMPLETION_TOKENS + "}}");
    }

    private static String event(String json) {
        return "data: " + json + "\n\n";
    }

    @Override
    public void close() {
        server.close();
    }
}
