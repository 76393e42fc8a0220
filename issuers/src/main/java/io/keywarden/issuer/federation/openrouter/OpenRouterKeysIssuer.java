package io.keywarden.issuer.federation.openrouter;

import io.keywarden.issuer.federation.ProviderHttp;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.Lease;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.linux.Secret;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Clock;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/**
 * OpenRouter provisioned keys: each lease is a key created through the management API with a
 * spend limit and an expiry, and deleted on revoke — a dynamic issuer with a spend cap at the
 * provider. The management key is read from its file at start and kept off the heap.
 */
public final class OpenRouterKeysIssuer implements Issuer {
    private static final JsonFactory JSON = new JsonFactory();
    private final OpenRouterKeysType.Spec spec;
    private final Clock clock;
    private final Secret managementKey;
    private final ProviderHttp http;

    public OpenRouterKeysIssuer(OpenRouterKeysType.Spec spec, Clock clock) throws IssuerException {
        this.spec = spec;
        this.clock = clock;
        this.http = new ProviderHttp("openrouter", spec.timeout());
        byte[] raw;
        try {
            raw = Files.readAllBytes(spec.managementKeyFile());
        } catch (IOException e) {
            throw new IssuerException("issuers." + spec.name() + ".managementKeyFile " + spec.managementKeyFile()
                    + " cannot be read: " + e.getMessage(), IssuerException.Kind.CONFIG);
        }
        int n = raw.length;
        while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r' || raw[n - 1] == ' ')) {
            n--;
        }
        if (n == 0) {
            throw new IssuerException("issuers." + spec.name() + ".managementKeyFile " + spec.managementKeyFile()
                    + " is empty", IssuerException.Kind.CONFIG);
        }
        this.managementKey = Secret.copyOf(raw, 0, n);
        Arrays.fill(raw, (byte) 0);
    }

    @Override
    public String name() {
        return spec.name();
    }

    @Override
    public String type() {
        return spec.type();
    }

    private String bearer() {
        byte[] raw = managementKey.toByteArray();
        try {
            return "Bearer " + new String(raw, StandardCharsets.US_ASCII);
        } finally {
            Arrays.fill(raw, (byte) 0);
        }
    }

    private URI keys(String suffix) {
        return URI.create(spec.url().toString().replaceAll("/+$", "") + "/keys" + suffix);
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        Map<String, String> params = key.paramsFor(workload);
        Instant now = clock.instant();
        Instant expires = now.plus(spec.ttl()).truncatedTo(ChronoUnit.SECONDS);
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("name", "keywarden " + workload.name() + "/" + key.name() + " " + UUID.randomUUID().toString()
                .substring(0, 8));
        if (params.containsKey("limit")) {
            body.put("limit", new java.math.BigDecimal(params.get("limit")));
        }
        if (params.containsKey("limitReset")) {
            body.put("limit_reset", params.get("limitReset"));
        }
        body.put("expires_at", expires.toString());
        byte[] req;
        try {
            req = ProviderHttp.JSON.writeValueAsBytes(body);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        String what = "key creation for workload " + workload.name();
        byte[] answer = http.post(keys(""), "application/json", req, Map.of("Authorization", bearer()), what);
        String hash = null;
        Secret secret = null;
        try (JsonParser p = JSON.createParser(answer)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new IOException("not an object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String f = p.currentName();
                JsonToken t = p.nextToken();
                if (f.equals("key") && t == JsonToken.VALUE_STRING && secret == null) {
                    secret = io.keywarden.issuer.SecretText.offHeap(p);
                } else if (f.equals("data") && t == JsonToken.START_OBJECT) {
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String g = p.currentName();
                        JsonToken v = p.nextToken();
                        if (g.equals("hash") && v == JsonToken.VALUE_STRING) {
                            hash = p.getText();
                        } else {
                            p.skipChildren();
                        }
                    }
                } else {
                    p.skipChildren();
                }
            }
        } catch (IOException e) {
            if (secret != null) {
                secret.close();
            }
            throw new IssuerException("openrouter " + what + " answered malformed JSON", IssuerException.Kind.SERVER_ERROR,
                    true, 200);
        } finally {
            Arrays.fill(answer, (byte) 0);
        }
        if (secret == null || hash == null || hash.isEmpty()) {
            if (secret != null) {
                secret.close();
            }
            throw new IssuerException("openrouter " + what + " answered without key or data.hash",
                    IssuerException.Kind.SERVER_ERROR, true, 200);
        }
        return new Lease(new IssuedKey(secret, expires, hash), now, false, Optional.of(hash)).diesAtProvider(expires);
    }

    /** DELETE /keys/{hash}: the key stops working at OpenRouter; 404 means it is already gone. */
    @Override
    public void revoke(Lease lease) throws IssuerException {
        HttpResponse<byte[]> resp = http.send(HttpRequest.newBuilder(keys("/" + lease.leaseId()))
                .header("Authorization", bearer()).DELETE(), "key deletion of " + lease.leaseId());
        if (resp.statusCode() != 200 && resp.statusCode() != 204 && resp.statusCode() != 404) {
            throw http.failure("key deletion of " + lease.leaseId(), resp.statusCode(), resp.body(),
                    resp.headers().firstValue("Retry-After"));
        }
    }
}
