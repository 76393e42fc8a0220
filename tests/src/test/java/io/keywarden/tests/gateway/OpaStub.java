package io.keywarden.tests.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;

/**
 * OPA's data API as keywarden's hook uses it ({@code POST /v1/data/keywarden/allow}), with the rule
 * the tests need written as code: OPA answers 400 to a body that is not {@code {"input": …}} JSON,
 * {@code {}} when the rule is undefined (here: any other path), else {@code {"result": <bool>}}.
 * The rule: workload "reviewer" may use anything but gpt-4o-mini; "slowpoke" gets its answer after
 * 2 s (a hook timeout); "noissue" is refused at issuance ({@code action: "issue"}); the rest allowed.
 */
final class OpaStub implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    final List<JsonNode> inputs = new CopyOnWriteArrayList<>();
    private final HttpServer server;

    OpaStub() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/", this::handle);
        server.start();
    }

    String url() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/v1/data/keywarden/allow";
    }

    private void handle(HttpExchange x) throws IOException {
        try (x) {
            JsonNode body;
            try {
                body = JSON.readTree(x.getRequestBody().readAllBytes());
            } catch (IOException e) {
                send(x, 400, "{\"code\":\"invalid_parameter\",\"message\":\"body is not JSON\"}");
                return;
            }
            if (!"POST".equals(x.getRequestMethod()) || body == null || !body.path("input").isObject()) {
                send(x, 400, "{\"code\":\"invalid_parameter\",\"message\":\"missing input document\"}");
                return;
            }
            JsonNode in = body.get("input");
            inputs.add(in);
            if (!x.getRequestURI().getPath().equals("/v1/data/keywarden/allow")) {
                send(x, 200, "{}");
                return;
            }
            String workload = in.path("workload").asText();
            boolean allow = switch (workload) {
                case "reviewer" -> !"gpt-4o-mini".equals(in.path("model").asText(null));
                case "noissue" -> !"issue".equals(in.path("action").asText());
                case "slowpoke" -> {
                    try {
                        Thread.sleep(2000);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    yield true;
                }
                default -> true;
            };
            send(x, 200, "{\"result\":" + allow + "}");
        }
    }

    private static void send(HttpExchange x, int status, String json) throws IOException {
        io.keywarden.tests.support.JsonReply.send(x, status, json);
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
