package io.keywarden.tests.support;

import io.keywarden.delivery.IssuedKey;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.time.Instant;

/** Fake keys of a fixed shape, so a reader can tell a whole key from a torn one. */
public final class TestKeys {
    private static final String ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    private static final SecureRandom RANDOM = new SecureRandom();

    private TestKeys() {
    }

    /** {@code prefix} followed by random base62 up to {@code length} characters. */
    public static String random(String prefix, int length) {
        StringBuilder b = new StringBuilder(prefix);
        while (b.length() < length) {
            b.append(ALPHABET.charAt(RANDOM.nextInt(ALPHABET.length())));
        }
        return b.toString();
    }

    public static IssuedKey issued(String secret, Instant expires) {
        return new IssuedKey(secret.getBytes(StandardCharsets.UTF_8), expires, "lease/" + IssuedKey.fingerprint(secret));
    }
}
