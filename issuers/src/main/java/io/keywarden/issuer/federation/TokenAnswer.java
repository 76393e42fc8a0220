package io.keywarden.issuer.federation;

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
 * A token endpoint's 200 answer, parsed with Jackson's streaming parser so the token goes from the
 * answer's bytes straight off the heap: {@code tokenField} (e.g. {@code access_token}, or
 * {@code accessToken} for Google's impersonation) and its lifetime, either {@code expires_in}
 * seconds or an RFC 3339 {@code expireTime}.
 */
public record TokenAnswer(Optional<Secret> token, long expiresIn, Optional<String> expireTime, Optional<String> tokenType) {
    private static final JsonFactory JSON = new JsonFactory();

    public static TokenAnswer parse(byte[] body, String tokenField) throws IOException {
        Secret token = null;
        long expiresIn = -1;
        String expireTime = null;
        String type = null;
        try (JsonParser p = JSON.createParser(body)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                throw new IOException("not a JSON object");
            }
            while (p.nextToken() == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken t = p.nextToken();
                if (name.equals(tokenField) && t == JsonToken.VALUE_STRING && token == null) {
                    token = io.keywarden.issuer.SecretText.offHeap(p);
                } else if (name.equals("expires_in") && t.isNumeric()) {
                    expiresIn = p.getLongValue();
                } else if (name.equals("expires_in") && t == JsonToken.VALUE_STRING) {
                    // Some servers quote it; a number either way.
                    try {
                        expiresIn = Long.parseLong(p.getText().trim());
                    } catch (NumberFormatException e) {
                        expiresIn = -1;
                    }
                } else if (name.equals("expireTime") && t == JsonToken.VALUE_STRING) {
                    expireTime = p.getText();
                } else if (name.equals("token_type") && t == JsonToken.VALUE_STRING) {
                    type = p.getText();
                } else {
                    p.skipChildren();
                }
            }
        } catch (IOException | RuntimeException e) {
            if (token != null) {
                token.close();
            }
            throw e instanceof IOException io ? io : new IOException(e.getMessage());
        }
        return new TokenAnswer(Optional.ofNullable(token).filter(s -> s.length() > 0), expiresIn,
                Optional.ofNullable(expireTime), Optional.ofNullable(type));
    }

}
