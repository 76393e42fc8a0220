package io.keywarden.tests.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.testkit.HttpStub;
import io.keywarden.testkit.HttpStub.Answer;
import java.io.IOException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * OPA's data API as keywarden's hook uses it ({@code POST /v1/data/keywarden/allow}), with the rule
 * the tests need written as code: OPA answers 400 to a body that is not {@code {"input": …}} JSON,
 * {@code {}} when the rule is undefined (here: any other path), else {@code {"result": <bool>}}.
 * The rule: workload "reviewer" may use anything but gpt-4o-mini; "slowpoke" gets its answer after
 * the stub closes (never within the hook's timeout); "noissue" is refused at issuance ({@code action: "issue"}); the rest allowed.
 */
final class OpaStub implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    final List<JsonNode> inputs = new CopyOnWriteArrayList<>();
    /** Released when the stub closes: what "slowpoke"'s answer waits for. */
    private final java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);
    private final HttpStub server;

    OpaStub() throws IOException {
        server = HttpStub.start().on("/", this::handle);
    }

    String url() {
        return server.uri("/v1/data/keywarden/allow").toString();
    }

    private Answer handle(HttpStub.Request x) {
        JsonNode body;
        try {
            body = JSON.readTree(x.body());
        } catch (IOException e) {
            return Answer.json(400, "{\"code\":\"invalid_parameter\",\"message\":\"body is not JSON\"}");
        }
        if (!"POST".equals(x.method()) || body == null || !body.path("input").isObject()) {
            return Answer.json(400, "{\"code\":\"invalid_parameter\",\"message\":\"missing input document\"}");
        }
        JsonNode in = body.get("input");
        inputs.add(in);
        if (!x.path().equals("/v1/data/keywarden/allow")) {
            return Answer.json(200, "{}");
        }
        String workload = in.path("workload").asText();
        boolean allow = switch (workload) {
            case "reviewer" -> !"gpt-4o-mini".equals(in.path("model").asText(null));
            case "noissue" -> !"issue".equals(in.path("action").asText());
            case "slowpoke" -> {
                try {
                    // OPA that does not answer before the stub closes: the hook's timeout is the point.
                    closed.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                yield true;
            }
            default -> true;
        };
        return Answer.json(200, "{\"result\":" + allow + "}");
    }

    @Override
    public void close() {
        closed.countDown();
        server.close();
    }
}
