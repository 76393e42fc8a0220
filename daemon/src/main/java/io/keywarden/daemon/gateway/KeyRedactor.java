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
    /** The lease's header text (read in place, never copied: the lease wipes it). */
    private final io.keywarden.delivery.KeyText key;
    private final int length;
    private byte[] held = new byte[0];
    private long redactions;

    KeyRedactor(io.keywarden.delivery.KeyText key) {
        this.key = key;
        this.length = key.keyLength();
    }

    private static byte mark(int i) {
        return i < MARK.length ? MARK[i] : (byte) '*';
    }

    /** The bytes of {@code chunk} that can be sent now (held-back bytes before it included). */
    byte[] feed(byte[] chunk) {
        if (length == 0) {
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

    /** Header values: each occurrence replaced (no string of the key is made to find it). */
    String redact(String value) {
        if (length == 0 || value == null || value.length() < length) {
            return value;
        }
        StringBuilder out = null;
        int from = 0;
        for (int i = 0; i + length <= value.length(); i++) {
            if (matchesAt(value, i)) {
                if (out == null) {
                    out = new StringBuilder(value.length());
                }
                out.append(value, from, i);
                for (int j = 0; j < length; j++) {
                    out.append((char) mark(j));
                }
                redactions++;
                from = i + length;
                i += length - 1;
            }
        }
        return out == null ? value : out.append(value, from, value.length()).toString();
    }

    private boolean matchesAt(String value, int at) {
        for (int j = 0; j < length; j++) {
            if (value.charAt(at + j) != (char) (key.keyByte(j) & 0xff)) {
                return false;
            }
        }
        return true;
    }

    long redactions() {
        return redactions;
    }

    /** Wipes what was held back (the key is the lease's, wiped with it). */
    void wipe() {
        Arrays.fill(held, (byte) 0);
    }

    private void redact(byte[] data) {
        byte first = key.keyByte(0);
        for (int i = 0; i + length <= data.length; i++) {
            if (data[i] == first && matchesAt(data, i)) {
                for (int j = 0; j < length; j++) {
                    data[i + j] = mark(j);
                }
                redactions++;
                i += length - 1;
            }
        }
    }

    private boolean matchesAt(byte[] data, int at) {
        for (int j = 1; j < length; j++) {
            if (data[at + j] != key.keyByte(j)) {
                return false;
            }
        }
        return true;
    }

    /** The length of the longest suffix of {@code data} that is a proper prefix of the key. */
    private int partialAtEnd(byte[] data) {
        for (int n = Math.min(length - 1, data.length); n > 0; n--) {
            boolean match = true;
            for (int j = 0; j < n; j++) {
                if (data[data.length - n + j] != key.keyByte(j)) {
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
