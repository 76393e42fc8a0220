package io.keywarden.issuer.federation;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.issuer.IssuerException;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * POSTs to a provider's token endpoint and classifies what comes back: the 200 body for the caller
 * to parse, or an {@link IssuerException} with the provider's own words (RFC 6749 §5.2
 * {@code error} and {@code error_description}) and the right retry behaviour: no answer, 429 (with
 * its {@code Retry-After}), 5xx and {@code temporarily_unavailable} are retried; a refused identity
 * ({@code invalid_grant}, 400/401/403) is not. Bodies are wiped after sending; no message carries
 * a token or a JWT.
 */
public final class ProviderHttp {
    public static final ObjectMapper JSON = new ObjectMapper();

    private final String provider;
    private final Duration timeout;
    private final HttpClient http;

    public ProviderHttp(String provider, Duration timeout) {
        this.provider = provider;
        this.timeout = timeout;
        this.http = HttpClient.newBuilder().connectTimeout(timeout).followRedirects(HttpClient.Redirect.NEVER)
                .executor(Runnable::run).build();
    }

    public String provider() {
        return provider;
    }

    /** A JSON body from a map of fields (strings only: no token is ever a field name). */
    public static byte[] json(Map<String, String> fields) {
        try {
            return JSON.writeValueAsBytes(fields);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** An application/x-www-form-urlencoded body. */
    public static byte[] form(Map<String, String> fields) {
        StringBuilder b = new StringBuilder();
        fields.forEach((k, v) -> b.append(b.length() == 0 ? "" : "&").append(URLEncoder.encode(k, StandardCharsets.UTF_8))
                .append('=').append(URLEncoder.encode(v, StandardCharsets.UTF_8)));
        return b.toString().getBytes(StandardCharsets.UTF_8);
    }

    public static Map<String, String> fields() {
        return new LinkedHashMap<>();
    }

    /**
     * POSTs {@code body} ({@code contentType}) to {@code url} with {@code headers}; returns the 200
     * answer's bytes (the caller wipes them). {@code what} names the call in errors, e.g. "token
     * exchange for workload reviewer".
     */
    public byte[] post(URI url, String contentType, byte[] body, Map<String, String> headers, String what)
            throws IssuerException {
        HttpRequest.Builder r = HttpRequest.newBuilder(url).timeout(timeout).header("Content-Type", contentType)
                .header("Accept", "application/json").POST(HttpRequest.BodyPublishers.ofByteArray(body));
        headers.forEach(r::header);
        HttpResponse<byte[]> resp;
        try {
            resp = http.send(r.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (HttpTimeoutException e) {
            throw IssuerException.http(provider + " " + what + " failed: no answer within " + timeout.toMillis() + " ms", 0);
        } catch (IOException e) {
            throw IssuerException.http(provider + " " + what + " failed: no answer (" + describe(e) + ")", 0);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IssuerException(provider + " " + what + " interrupted", IssuerException.Kind.UNREACHABLE);
        } finally {
            Arrays.fill(body, (byte) 0);
        }
        if (resp.statusCode() == 200 || resp.statusCode() == 201) {
            return resp.body();
        }
        throw failure(what, resp.statusCode(), resp.body(), resp.headers().firstValue("Retry-After"));
    }

    /**
     * Sends {@code r} (any method) with this provider's timeout and client; no answer becomes an
     * UNREACHABLE {@link IssuerException}. For answers that are not token JSON (XML, 204, 404).
     */
    public HttpResponse<byte[]> send(HttpRequest.Builder r, String what) throws IssuerException {
        try {
            return http.send(r.timeout(timeout).build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (HttpTimeoutException e) {
            throw IssuerException.http(provider + " " + what + " failed: no answer within " + timeout.toMillis() + " ms", 0);
        } catch (IOException e) {
            throw IssuerException.http(provider + " " + what + " failed: no answer (" + describe(e) + ")", 0);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IssuerException(provider + " " + what + " interrupted", IssuerException.Kind.UNREACHABLE);
        }
    }

    /** The provider's refusal as a reason a person can act on, classified for retry. */
    public IssuerException failure(String what, int status, byte[] body, Optional<String> retryAfter) {
        String error = "";
        String description = "";
        try {
            JsonNode j = body.length == 0 ? JSON.createObjectNode() : JSON.readTree(body);
            JsonNode err = j.path("error");
            if (err.isTextual()) {
                error = err.asText();
                description = j.path("error_description").asText("");
            } else if (err.isObject()) {
                // {"error": {"type"/"code"/"status", "message"}} (Anthropic, Google APIs)
                error = err.path("type").asText(err.path("status").asText(err.path("code").asText("")));
                description = err.path("message").asText("");
            }
        } catch (IOException e) {
            description = "a non-JSON answer";
        } finally {
            Arrays.fill(body, (byte) 0);
        }
        String detail = io.keywarden.issuer.SecretText.clean((error.isEmpty() ? "" : error) + (description.isEmpty() ? "" : (error.isEmpty() ? "" : ": ")
                + description));
        String base = provider + " " + what + " failed: HTTP " + status + (detail.isEmpty() ? "" : ": " + detail);
        if (status == 429) {
            return new IssuerException(base + retryAfter.map(s -> " (Retry-After " + s + ")").orElse(""),
                    IssuerException.Kind.SERVER_ERROR, true, status);
        }
        // Entra: a federated credential just created is not visible everywhere yet (AADSTS70021).
        if (description.contains("AADSTS70021")) {
            return new IssuerException(base + " (a new federated credential propagates for a few minutes: retrying)",
                    IssuerException.Kind.REFUSED, true, status);
        }
        if (status >= 500 || error.equals("temporarily_unavailable") || error.equals("server_error")) {
            return new IssuerException(base, IssuerException.Kind.SERVER_ERROR, true, status);
        }
        if (error.equals("invalid_grant") || error.equals("invalid_subject_token") || error.equals("invalid_client")
                || error.equals("unauthorized_client") || status == 401 || status == 403) {
            return new IssuerException(provider + " rejected the workload's identity (" + what + "): HTTP " + status
                    + (detail.isEmpty() ? "" : ": " + detail), IssuerException.Kind.REFUSED, false, status);
        }
        return IssuerException.http(base, status);
    }

    public static String describe(IOException e) {
        String kind = e instanceof java.net.ConnectException ? "connection refused"
                : e instanceof java.net.UnknownHostException ? "unknown host"
                : e instanceof javax.net.ssl.SSLException ? "TLS failure" : "I/O error";
        return e.getMessage() == null || e.getMessage().isBlank() ? kind : kind + ": " + io.keywarden.issuer.SecretText.clean(e.getMessage());
    }

}
