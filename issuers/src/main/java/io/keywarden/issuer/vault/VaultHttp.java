package io.keywarden.issuer.vault;

import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.SecretText;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.file.Files;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Map;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * The few Vault/OpenBao HTTP calls keywarden makes, over one shared JDK HttpClient (connections
 * are reused). Answers are parsed as JSON; failures become {@link IssuerException}s classified
 * by status, with Vault's own {@code errors} and never a token or JWT.
 */
final class VaultHttp {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final VaultConnection config;
    private final HttpClient http;
    private final String base;

    VaultHttp(VaultConnection config) throws IssuerException {
        this.config = config;
        this.base = config.address().toString().replaceAll("/+$", "") + "/v1/";
        // Callbacks run on the client's own selector thread instead of hopping to a pool: the callers
        // block in send() anyway, and each hop costs a wake-up.
        HttpClient.Builder b = HttpClient.newBuilder().connectTimeout(config.timeout()).version(HttpClient.Version.HTTP_1_1)
                .executor(Runnable::run);
        if (config.caFile().isPresent()) {
            b.sslContext(trusting(config));
        }
        this.http = b.build();
    }

    private static SSLContext trusting(VaultConnection config) throws IssuerException {
        try (InputStream in = Files.newInputStream(config.caFile().get())) {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            int i = 0;
            for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                ks.setCertificateEntry("ca-" + i++, c);
            }
            if (i == 0) {
                throw new IssuerException("issuer.vault.caFile " + config.caFile().get() + " holds no certificate", IssuerException.Kind.CONFIG);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            SSLContext ctx = SSLContext.getInstance("TLS");
            ctx.init(null, tmf.getTrustManagers(), null);
            return ctx;
        } catch (IOException | GeneralSecurityException e) {
            throw new IssuerException("issuer.vault.caFile " + config.caFile().get() + " cannot be used: "
                    + e.getClass().getSimpleName(), IssuerException.Kind.CONFIG);
        }
    }

    /** The HTTP status of an unauthenticated GET of {@code path}, within {@code timeout}. */
    int status(String path, java.time.Duration timeout) throws IssuerException {
        HttpRequest r = HttpRequest.newBuilder(URI.create(base + path)).timeout(timeout).GET().build();
        try {
            return http.send(r, HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (HttpTimeoutException e) {
            throw IssuerException.http("no HTTP answer within " + timeout.toMillis() + " ms", 0);
        } catch (IOException e) {
            throw IssuerException.http("no HTTP answer (" + describe(e) + ")", 0);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IssuerException("interrupted", IssuerException.Kind.UNREACHABLE);
        }
    }

    /** What went wrong on the wire, in words rather than an exception's class name. */
    static String describe(IOException e) {
        String kind = e instanceof java.net.ConnectException ? "connection refused"
                : e instanceof java.net.UnknownHostException
                ? "unknown host" : e instanceof javax.net.ssl.SSLException ? "TLS failure" : "I/O error";
        return e.getMessage() == null || e.getMessage().isBlank() ? kind : kind + ": " + SecretText.clean(e.getMessage());
    }

    /** GET or POST {@code path} (under /v1/); 200 gives the JSON, 204 gives null. */
    JsonNode call(String what, String method, String path, String token, Map<String, Object> body) throws IssuerException {
        byte[] raw = callRaw(what, method, path, token, body);
        if (raw == null) {
            return null;
        }
        try {
            return raw.length == 0 ? JSON.createObjectNode() : JSON.readTree(raw);
        } catch (IOException e) {
            throw new IssuerException(what + " failed: HTTP 200: malformed JSON answer", IssuerException.Kind.SERVER_ERROR, 200);
        }
    }

    /**
     * The same, giving the 200 answer's bytes unparsed (null for 204): for answers that carry a
     * secret, which the caller parses without making it a String and then wipes.
     */
    byte[] callRaw(String what, String method, String path, String token, Map<String, Object> body) throws IssuerException {
        HttpRequest.Builder r = HttpRequest.newBuilder(URI.create(base + path)).timeout(config.timeout())
                .header("Accept", "application/json");
        if (token != null) {
            r.header("X-Vault-Token", token);
        }
        if (!config.namespace().isEmpty()) {
            r.header("X-Vault-Namespace", config.namespace());
        }
        try {
            if (body == null) {
                r.method(method, HttpRequest.BodyPublishers.noBody());
            } else {
                r.header("Content-Type", "application/json");
                r.method(method, HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body)));
            }
            HttpResponse<byte[]> resp = http.send(r.build(), HttpResponse.BodyHandlers.ofByteArray());
            int status = resp.statusCode();
            if (status == 204) {
                return null;
            }
            if (status == 200) {
                return resp.body();
            }
            JsonNode json;
            try {
                json = resp.body().length == 0 ? JSON.createObjectNode() : JSON.readTree(resp.body());
            } catch (IOException e) {
                throw new IssuerException(what + " failed: HTTP " + status + ": malformed JSON answer",
                        IssuerException.Kind.SERVER_ERROR, true, status);
            }
            {
                StringBuilder errors = new StringBuilder();
                json.path("errors").forEach(x -> errors.append(errors.length() == 0 ? "" : "; ").append(x.asText()));
                throw IssuerException.http(what + " failed: HTTP " + status + (errors.length() == 0 ? ""
                        : ": " + SecretText.clean(errors.toString().replaceAll("\\s+", " ").trim())), status);
            }
        } catch (HttpTimeoutException e) {
            throw IssuerException.http(what + " failed: no HTTP answer within " + config.timeout().toMillis() + " ms", 0);
        } catch (IOException e) {
            throw IssuerException.http(what + " failed: no HTTP answer (" + describe(e) + ")", 0);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IssuerException(what + " interrupted", IssuerException.Kind.UNREACHABLE);
        }
    }
}
