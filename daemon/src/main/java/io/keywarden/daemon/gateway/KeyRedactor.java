package io.keywarden.daemon.gateway;

import java.util.Arrays;

/**
 * Removes the injected credential from whatever the upstream answers before the agent sees it:
 * every occurrence in the body, across chunk boundaries, is replaced by a marker of the same length
 * ({@code [redacted by keywarden]} cut or padded with {@code *}), so a {@code Content-Length} stays
 * true. Holds back at most the bytes at a chunk's end that could begin the key, nothing else, so a
 * stream is not delayed. Call {@link #wipe} when the exchange ends.
 */
final class KeyRedactor {
    private static final byte[] MARK = "[redacted by keywarden]".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    private final byte[] key;
    private final byte[] replacement;
    private byte[] held = new byte[0];
    private long redactions;

    KeyRedactor(byte[] key) {
        this.key = key.clone();
        this.replacement = new byte[key.length];
        for (int i = 0; i < replacement.length; i++) {
            replacement[i] = i < MARK.length ? MARK[i] : (byte) '*';
        }
    }

    /** The bytes of {@code chunk} that can be sent now (held-back bytes before it included). */
    byte[] feed(byte[] chunk) {
        if (key.length == 0) {
            return chunk;
        }
        byte[] data = held.length == 0 ? chunk : concat(held, chunk);
        redact(data);
        int keep = partialAtEnd(data);
        held = Arrays.copyOfRange(data, data.length - keep, data.length);
        return keep == 0 ? data : Arrays.copyOf(data, data.length - keep);
    }

    /** What was held back, at the end of the answer (it cannot be a whole key). */
    byte[] end() {
        byte[] rest = held;
        held = new byte[0];
        return rest;
    }

    /** Header values: each occurrence replaced. */
    String redact(String value) {
        String k = new String(key, java.nio.charset.StandardCharsets.ISO_8859_1);
        if (key.length == 0 || !value.contains(k)) {
            return value;
        }
        redactions++;
        return value.replace(k, new String(replacement, java.nio.charset.StandardCharsets.ISO_8859_1));
    }

    long redactions() {
        return redactions;
    }

    void wipe() {
        Arrays.fill(key, (byte) 0);
        Arrays.fill(held, (byte) 0);
    }

    private void redact(byte[] data) {
        for (int i = 0; i + key.length <= data.length; i++) {
            if (data[i] == key[0] && matchesAt(data, i)) {
                System.arraycopy(replacement, 0, data, i, key.length);
                redactions++;
                i += key.length - 1;
            }
        }
    }

    private boolean matchesAt(byte[] data, int at) {
        for (int j = 1; j < key.length; j++) {
            if (data[at + j] != key[j]) {
                return false;
            }
        }
        return true;
    }

    /** The length of the longest suffix of {@code data} that is a proper prefix of the key. */
    private int partialAtEnd(byte[] data) {
        for (int n = Math.min(key.length - 1, data.length); n > 0; n--) {
            boolean match = true;
            for (int j = 0; j < n; j++) {
                if (data[data.length - n + j] != key[j]) {
                    match = false;
                    break;
                }
            }
            if (match) {
                return n;
            }
        }
        return 0;
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
