package io.keywarden.tests.support;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.testkit.HttpStub;

/**
 * An OpenAI-style upstream for the gateway's budget tests, on the testkit's {@link HttpStub}: a
 * chat completion with its {@code usage}, the output capped by the request's {@code max_tokens} as
 * the provider caps it, a malformed body refused with 400 as the provider refuses it.
 */
public final class Completions {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Completions() {
    }

    /** What one request bills, for the test's count. */
    public interface Billing {
        void billed(String body, long promptTokens, long completionTokens);
    }

    /** A stub answering every path with {@code prompt} input tokens and up to {@code completion} output tokens, after {@code delayMs}. */
    public static HttpStub start(long prompt, long completion, long delayMs, Billing billing) throws java.io.IOException {
        return HttpStub.start().on("/", r -> {
            JsonNode req;
            try {
                req = JSON.readTree(r.body());
            } catch (java.io.IOException e) {
                return HttpStub.Answer.json(400, "{\"error\":{\"message\":\"We could not parse the JSON body\"}}");
            }
            long out = Math.min(completion, req.path("max_tokens").asLong(Long.MAX_VALUE));
            billing.billed(r.body(), prompt, out);
            if (delayMs > 0) {
                Thread.sleep(delayMs);  // the provider's answer time: requests overlap in flight
            }
            return HttpStub.Answer.json(200, "{\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion\",\"model\":"
                    + "\"gpt-4.1-mini\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},"
                    + "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":" + prompt + ",\"completion_tokens\":" + out
                    + ",\"total_tokens\":" + (prompt + out) + "}}");
        });
    }
}
