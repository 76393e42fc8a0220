package io.keywarden.issuer.vault;

import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.SecretText;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.Proxy;
import java.net.SocketTimeoutException;
import java.net.URL;
import java.nio.file.Files;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Map;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;

/**
 * The few Vault/OpenBao HTTP calls keywarden makes: blocking HTTP/1.1 on the issuer's own threads,
 * over the JDK's {@link HttpURLConnection} (connections kept alive and reused, no proxy, no
 * redirect followed). Answers are parsed as JSON; failures become {@link IssuerException}s
 * classified by status, with Vault's own {@code errors} and never a token or JWT. The JDK's
 * asynchronous {@code HttpClient} was used before: at a node's refresh rate its selector thread and
 * its completion stages were a third of the daemon's CPU (ScaleBench, perf; docs/benchmarks.md).
 */
final class VaultHttp {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final VaultConnection config;
    private final SSLSocketFactory tls;
    private final String base;

    VaultHttp(VaultConnection config) throws IssuerException {
        this.config = config;
        this.base = config.address().toString().replaceAll("/+$", "") + "/v1/";
        this.tls = config.caFile().isPresent() ? trusting(config).getSocketFactory() : null;
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

    /** A request to {@code path} under /v1/, not yet sent: connect and read each bounded by {@code timeout}. */
    private HttpURLConnection open(String method, String path, java.time.Duration timeout) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL(base + path).openConnection(Proxy.NO_PROXY);
        if (tls != null && c instanceof HttpsURLConnection https) {
            https.setSSLSocketFactory(tls);
        }
        int ms = (int) Math.min(Integer.MAX_VALUE, Math.max(1, timeout.toMillis()));
        c.setConnectTimeout(ms);
        c.setReadTimeout(ms);
        c.setInstanceFollowRedirects(false);
        c.setUseCaches(false);
        c.setRequestMethod(method);
        return c;
    }

    /** The whole answer body (the error stream for a 4xx/5xx), read to its end so the connection is reused. */
    private static byte[] body(HttpURLConnection c, int status) throws IOException {
        InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
        if (in == null) {
            return new byte[0];
        }
        try (in) {
            return in.readAllBytes();
        }
    }

    /** The HTTP status of an unauthenticated GET of {@code path}, within {@code timeout}. */
    int status(String path, java.time.Duration timeout) throws IssuerException {
        try {
            HttpURLConnection c = open("GET", path, timeout);
            int status = c.getResponseCode();
            body(c, status);
            return status;
        } catch (SocketTimeoutException e) {
            throw IssuerException.http("no HTTP answer within " + timeout.toMillis() + " ms", 0);
        } catch (IOException e) {
            throw IssuerException.http("no HTTP answer (" + describe(e) + ")", 0);
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
        try {
            HttpURLConnection c = open(method, path, config.timeout());
            c.setRequestProperty("Accept", "application/json");
            if (token != null) {
                c.setRequestProperty("X-Vault-Token", token);
            }
            if (!config.namespace().isEmpty()) {
                c.setRequestProperty("X-Vault-Namespace", config.namespace());
            }
            if (body != null) {
                byte[] out = JSON.writeValueAsBytes(body);
                c.setRequestProperty("Content-Type", "application/json");
                c.setDoOutput(true);
                c.setFixedLengthStreamingMode(out.length);
                try (OutputStream o = c.getOutputStream()) {
                    o.write(out);
                }
            } else if (!method.equals("GET")) {
                // A bodiless PUT or POST still says so (Content-Length: 0), as Vault's own clients do.
                c.setDoOutput(true);
                c.setFixedLengthStreamingMode(0);
                c.getOutputStream().close();
            }
            int status = c.getResponseCode();
            byte[] answer = body(c, status);
            if (status == 204) {
                return null;
            }
            if (status == 200) {
                return answer;
            }
            JsonNode json;
            try {
                json = answer.length == 0 ? JSON.createObjectNode() : JSON.readTree(answer);
            } catch (IOException e) {
                throw new IssuerException(what + " failed: HTTP " + status + ": malformed JSON answer",
                        IssuerException.Kind.SERVER_ERROR, true, status);
            }
            StringBuilder errors = new StringBuilder();
            json.path("errors").forEach(x -> errors.append(errors.length() == 0 ? "" : "; ").append(x.asText()));
            throw IssuerException.http(what + " failed: HTTP " + status + (errors.length() == 0 ? ""
                    : ": " + SecretText.clean(errors.toString().replaceAll("\\s+", " ").trim())), status);
        } catch (SocketTimeoutException e) {
            throw IssuerException.http(what + " failed: no HTTP answer within " + config.timeout().toMillis() + " ms", 0);
        } catch (IOException e) {
            throw IssuerException.http(what + " failed: no HTTP answer (" + describe(e) + ")", 0);
        }
    }
}
