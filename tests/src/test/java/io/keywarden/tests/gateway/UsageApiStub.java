package io.keywarden.tests.gateway;

import io.keywarden.testkit.HttpStub;
import io.keywarden.testkit.HttpStub.Answer;
import java.io.IOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * OpenAI's {@code GET /v1/organization/usage/completions} as the contract describes it: admin key
 * as Bearer (401 otherwise), {@code start_time} required (400 otherwise), {@code bucket_width=1m},
 * {@code group_by[]} with {@code api_key_id} and {@code model}; answers a page per bucket (so a
 * poll must follow {@code next_page}) with {@code results} per key and model.
 */
final class UsageApiStub implements AutoCloseable {
    static final String ADMIN_KEY = "sk-admin-" + "Q".repeat(40);
    /**
     * api_key_id → {input, output, requests} in one bucket, the minute the stub started in: a bucket
     * does not move when the clock passes a minute boundary during a test (the real API's buckets
     * do not either), so the same usage is never reported under two minutes.
     */
    final Map<String, long[]> usage = new ConcurrentHashMap<>();
    final List<String> queries = new CopyOnWriteArrayList<>();
    private final HttpStub server;
    private final long minute = System.currentTimeMillis() / 60_000 * 60;

    UsageApiStub() throws IOException {
        server = HttpStub.start().on("/v1/organization/usage/completions", this::handle);
    }

    String url() {
        return server.uri("/v1").toString();
    }

    private Answer handle(HttpStub.Request x) {
        if (!("Bearer " + ADMIN_KEY).equals(x.header("Authorization"))) {
            return Answer.json(401, "{\"error\":{\"message\":\"Missing or invalid admin key\",\"type\":\"invalid_request_error\"}}");
        }
        String raw = x.query();
        queries.add(raw);
        Map<String, List<String>> q = new java.util.HashMap<>();
        for (String kv : raw == null ? new String[0] : raw.split("&")) {
            int eq = kv.indexOf('=');
            q.computeIfAbsent(URLDecoder.decode(kv.substring(0, eq), StandardCharsets.UTF_8), k -> new ArrayList<>())
                    .add(URLDecoder.decode(kv.substring(eq + 1), StandardCharsets.UTF_8));
        }
        if (!q.containsKey("start_time") || !List.of("1m").equals(q.get("bucket_width"))
                || !q.getOrDefault("group_by[]", List.of()).containsAll(List.of("api_key_id", "model"))) {
            return Answer.json(400, "{\"error\":{\"message\":\"start_time is required; this stub wants 1m buckets"
                    + " grouped by api_key_id and model\"}}");
        }
        boolean second = List.of("page2").equals(q.get("page"));
        StringBuilder results = new StringBuilder();
        if (second) {
            usage.forEach((id, u) -> results.append(results.length() == 0 ? "" : ",").append(
                    "{\"object\":\"organization.usage.completions.result\",\"input_tokens\":" + u[0]
                            + ",\"output_tokens\":" + u[1] + ",\"num_model_requests\":" + u[2]
                            + ",\"input_cached_tokens\":0,\"api_key_id\":\"" + id + "\",\"model\":\"gpt-4.1-mini\"}"));
        }
        // Page 1: an earlier, empty bucket; page 2: the stub's minute.
        String bucket = "{\"object\":\"bucket\",\"start_time\":" + (second ? minute : minute - 60) + ",\"end_time\":"
                + (second ? minute + 60 : minute) + ",\"results\":[" + results + "]}";
        return Answer.json(200, "{\"object\":\"page\",\"data\":[" + bucket + "],\"has_more\":" + !second + ",\"next_page\":"
                + (second ? "null" : "\"page2\"") + "}");
    }

    @Override
    public void close() {
        server.close();
    }
}
