package io.keywarden.issuer.vault;

import io.keywarden.issuer.SecretText;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import io.keywarden.linux.Secret;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Optional;

/**
 * A Vault/OpenBao secret read ({@code {lease_id, lease_duration, renewable, data: {…}}}) parsed
 * with Jackson's streaming parser, so the secret field goes from the answer's bytes straight off
 * the heap ({@link Secret}) without ever being a {@code String}. The caller wipes the bytes.
 */
record CredsAnswer(String leaseId, long leaseSeconds, boolean renewable, Optional<String> apiKeyId,
                   Optional<Secret> secret, Optional<java.time.Instant> keyExpiresAt, java.util.List<String> warnings) {
    private static final JsonFactory JSON = new JsonFactory();

    static CredsAnswer parse(byte[] body, String field) throws IOException {
        String leaseId = "";
        long seconds = 0;
        boolean renewable = false;
        String keyId = null;
        Secret secret = null;
        java.time.Instant keyExpires = null;
        java.util.List<String> warnings = new java.util.ArrayList<>();
        try (JsonParser p = JSON.createParser(body)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new IOException("not a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken t = p.nextToken();
                switch (name) {
                    case "lease_id" -> leaseId = t == JsonToken.VALUE_STRING ? p.getText() : "";
                    case "lease_duration" -> seconds = t.isNumeric() ? p.getLongValue() : 0;
                    case "renewable" -> renewable = t == JsonToken.VALUE_TRUE;
                    case "data" -> {
                        if (t != JsonToken.START_OBJECT) {
                            p.skipChildren();
                            break;
                        }
                        while (p.nextToken() == JsonToken.FIELD_NAME) {
                            String k = p.currentName();
                            JsonToken v = p.nextToken();
                            if (k.equals(field) && v == JsonToken.VALUE_STRING && secret == null) {
                                secret = SecretText.offHeap(p);
                            } else if (k.equals("api_key_id") && v == JsonToken.VALUE_STRING) {
                                keyId = p.getText();
                            } else if (k.equals("api_key_expires_at") && v == JsonToken.VALUE_NUMBER_INT
                                    && p.getLongValue() > 0) {
                                keyExpires = java.time.Instant.ofEpochSecond(p.getLongValue());
                            } else {
                                p.skipChildren();
                            }
                        }
                    }
                    case "warnings" -> {
                        // The engine's warnings (a requested ttl it did not honour, a key capped below its lease).
                        if (t == JsonToken.START_ARRAY) {
                            while (p.nextToken() != JsonToken.END_ARRAY) {
                                if (p.currentToken() == JsonToken.VALUE_STRING && warnings.size() < 8) {
                                    warnings.add(p.getText());
                                } else {
                                    p.skipChildren();
                                }
                            }
                        } else {
                            p.skipChildren();
                        }
                    }
                    default -> p.skipChildren();
                }
            }
        } catch (IOException | RuntimeException e) {
            if (secret != null) {
                secret.close();
            }
            throw e;
        }
        return new CredsAnswer(leaseId, seconds, renewable, Optional.ofNullable(keyId).filter(s -> !s.isEmpty()),
                Optional.ofNullable(secret).filter(s -> s.length() > 0), Optional.ofNullable(keyExpires),
                java.util.List.copyOf(warnings));
    }

}
