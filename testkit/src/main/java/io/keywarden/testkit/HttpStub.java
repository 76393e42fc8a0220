package io.keywarden.testkit;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * A provider, Vault, OPA or upstream stand-in on loopback: the JDK's HTTP server, one handler per
 * path prefix, every request kept ({@link #requests()}) for the test to check what the real
 * service would have checked. Handlers answer with {@link Answer}; one that throws answers 500.
 * Close it (try-with-resources or {@code @AfterEach}).
 */
public final class HttpStub implements AutoCloseable {

    /**
     * A request as received: method, path (without the query), query, headers (first value each),
     * body as UTF-8 text and as the bytes received (a protobuf export, say).
     */
    public record Request(String method, String path, String query, Map<String, String> headers, String body,
                          byte[] bytes) {
        /** A header's first value, case-insensitively; null when absent. */
        public String header(String name) {
            for (Map.Entry<String, String> e : headers.entrySet()) {
                if (e.getKey().equalsIgnoreCase(name)) {
                    return e.getValue();
                }
            }
            return null;
        }
    }

    /** An answer: status, JSON or text body (empty: none), extra headers. */
    public record Answer(int status, String body, Map<String, String> headers) {
        public static Answer json(int status, String body) {
            return new Answer(status, body, Map.of("Content-Type", "application/json"));
        }

        public static Answer empty(int status) {
            return new Answer(status, "", Map.of());
        }
    }

    /** What a path answers. */
    public interface Handler {
        Answer answer(Request r) throws Exception;
    }

    private final HttpServer server;
    private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "http-stub");
        t.setDaemon(true);
        return t;
    });
    private final List<Request> requests = new CopyOnWriteArrayList<>();

    private HttpStub() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(pool);
    }

    /** A stub on an ephemeral loopback port; add paths with {@link #on}, then it serves at once. */
    public static HttpStub start() throws IOException {
        HttpStub s = new HttpStub();
        s.server.start();
        return s;
    }

    /** Requests under {@code pathPrefix} go to {@code handler} (the longest matching prefix wins, as in the JDK). */
    public HttpStub on(String pathPrefix, Handler handler) {
        server.createContext(pathPrefix, x -> serve(x, handler));
        return this;
    }

    private void serve(HttpExchange x, Handler handler) throws IOException {
        Map<String, String> headers = new java.util.LinkedHashMap<>();
        x.getRequestHeaders().forEach((k, v) -> headers.put(k, v.isEmpty() ? "" : v.get(0)));
        byte[] bytes = x.getRequestBody().readAllBytes();
        Request r = new Request(x.getRequestMethod(), x.getRequestURI().getPath(), x.getRequestURI().getRawQuery(), headers,
                new String(bytes, StandardCharsets.UTF_8), bytes);
        requests.add(r);
        Answer a;
        try {
            a = handler.answer(r);
        } catch (Exception e) {
            a = Answer.json(500, "{\"error\":\"the stub's handler failed: " + e.getClass().getSimpleName() + "\"}");
        }
        byte[] b = a.body().getBytes(StandardCharsets.UTF_8);
        a.headers().forEach((k, v) -> x.getResponseHeaders().add(k, v));
        x.sendResponseHeaders(a.status(), b.length == 0 ? -1 : b.length);
        if (b.length > 0) {
            x.getResponseBody().write(b);
        }
        x.close();
    }

    /** {@code http://127.0.0.1:PORT} + {@code path}. */
    public URI uri(String path) {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + path);
    }

    /** Every request received so far, in order. */
    public List<Request> requests() {
        return List.copyOf(requests);
    }

    @Override
    public void close() {
        server.stop(0);
        pool.shutdownNow();
    }
}
