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
     * A request as received: method, path as sent (not decoded, without the query), query, headers (first value each),
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

    /**
     * An answer: status, body (empty: none), extra headers; or, with {@code chunks}, a body streamed
     * piece by piece (chunked encoding, each flushed, {@code pauseMs} apart), as server-sent events
     * arrive from a provider.
     */
    public record Answer(int status, String body, Map<String, String> headers, List<String> chunks, long pauseMs) {
        public Answer(int status, String body, Map<String, String> headers) {
            this(status, body, headers, List.of(), 0);
        }

        public static Answer json(int status, String body) {
            return new Answer(status, body, Map.of("Content-Type", "application/json"));
        }

        public static Answer empty(int status) {
            return new Answer(status, "", Map.of());
        }

        /** {@code chunks} streamed {@code pauseMs} apart. */
        public static Answer stream(int status, Map<String, String> headers, List<String> chunks, long pauseMs) {
            return new Answer(status, "", headers, List.copyOf(chunks), pauseMs);
        }

        /** The same answer with one more header. */
        public Answer with(String header, String value) {
            Map<String, String> h = new java.util.LinkedHashMap<>(headers);
            h.put(header, value);
            return new Answer(status, body, h, chunks, pauseMs);
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
    private volatile boolean record = true;

    private HttpStub(int port, javax.net.ssl.SSLContext tls) throws IOException {
        InetSocketAddress at = new InetSocketAddress("127.0.0.1", port);
        if (tls == null) {
            server = HttpServer.create(at, 64);
        } else {
            com.sun.net.httpserver.HttpsServer https = com.sun.net.httpserver.HttpsServer.create(at, 64);
            https.setHttpsConfigurator(new com.sun.net.httpserver.HttpsConfigurator(tls));
            server = https;
        }
        server.setExecutor(pool);
    }

    /** A stub on an ephemeral loopback port; add paths with {@link #on}, then it serves at once. */
    public static HttpStub start() throws IOException {
        return startOn(0);
    }

    /** A stub on loopback port {@code port} (a service that comes back where it was: stop, then start on the same port). */
    public static HttpStub startOn(int port) throws IOException {
        HttpStub s = new HttpStub(port, null);
        s.server.start();
        return s;
    }

    /** An HTTPS stub (HTTP/1.1: an ALPN offer of h2 falls back) on an ephemeral loopback port. */
    public static HttpStub startTls(javax.net.ssl.SSLContext tls) throws IOException {
        HttpStub s = new HttpStub(0, tls);
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
        Request r = new Request(x.getRequestMethod(), x.getRequestURI().getRawPath(), x.getRequestURI().getRawQuery(), headers,
                new String(bytes, StandardCharsets.UTF_8), bytes);
        if (record) {
            requests.add(r);
        }
        Answer a;
        try {
            a = handler.answer(r);
        } catch (Exception e) {
            a = Answer.json(500, "{\"error\":\"the stub's handler failed: " + e.getClass().getSimpleName() + "\"}");
        }
        a.headers().forEach((k, v) -> x.getResponseHeaders().add(k, v));
        if (!a.chunks().isEmpty()) {
            x.sendResponseHeaders(a.status(), 0);
            java.io.OutputStream out = x.getResponseBody();
            for (int i = 0; i < a.chunks().size(); i++) {
                if (i > 0 && a.pauseMs() > 0) {
                    try {
                        Thread.sleep(a.pauseMs());  // the upstream's pace between chunks
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        break;
                    }
                }
                out.write(a.chunks().get(i).getBytes(StandardCharsets.UTF_8));
                out.flush();
            }
            x.close();
            return;
        }
        byte[] b = a.body().getBytes(StandardCharsets.UTF_8);
        x.sendResponseHeaders(a.status(), b.length == 0 ? -1 : b.length);
        if (b.length > 0) {
            x.getResponseBody().write(b);
        }
        x.close();
    }

    /** {@code http://127.0.0.1:PORT} (or https) + {@code path}. */
    public URI uri(String path) {
        return URI.create((server instanceof com.sun.net.httpserver.HttpsServer ? "https" : "http") + "://127.0.0.1:"
                + port() + path);
    }

    public int port() {
        return server.getAddress().getPort();
    }

    /**
     * Keep nothing of what arrives from now on ({@link #requests()} stays as it is), for a benchmark's
     * hundreds of thousands of requests: the log is a copy-on-write list that copies itself at every
     * request and holds every body, so a stub that keeps it slows as a run goes on (a 1-connection
     * round trip 121 µs at a run's start, 339 µs after ~300,000 requests, 276 ms once 32 KiB bodies
     * piled up) and charges whatever is measured later.
     */
    public HttpStub unrecorded() {
        record = false;
        return this;
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
