package io.keywarden.delivery;

import java.util.Arrays;

/**
 * A credential as the text of an HTTP header value ({@code "Bearer " + key}, or the key alone),
 * made once per lease ({@link IssuedKey#headerText}) and wiped with it: the gateway hands the same
 * object to every request's headers, so no request makes a copy of the key. {@link #toString()}
 * never gives the key: a library that turned the value into a string would send the fingerprint,
 * not the key, and the upstream's refusal would show it (Vert.x's HTTP/1 client does: it is given
 * a {@link #view} that it may turn into a string, once per lease).
 */
public final class KeyText implements CharSequence {
    private final byte[] text;
    private final int keyFrom;
    private final String fingerprint;

    private KeyText(byte[] text, int keyFrom, String fingerprint) {
        this.text = text;
        this.keyFrom = keyFrom;
        this.fingerprint = fingerprint;
    }

    /** {@code prefix} then {@code key} (US-ASCII); {@code key} is copied, the caller wipes its array. */
    public static KeyText of(String prefix, byte[] key) {
        byte[] p = prefix.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        byte[] t = Arrays.copyOf(p, p.length + key.length);
        System.arraycopy(key, 0, t, p.length, key.length);
        return new KeyText(t, p.length, IssuedKey.fingerprint(key));
    }

    @Override
    public int length() {
        return text.length;
    }

    @Override
    public char charAt(int index) {
        return (char) (text[index] & 0xff);
    }

    /** Not offered: a part of the key would be a copy that nothing wipes. */
    @Override
    public CharSequence subSequence(int start, int end) {
        throw new UnsupportedOperationException("a credential's text is not cut into copies");
    }

    private CharSequence view;

    /**
     * One view of this text for a library's own header type (e.g. Netty's {@code AsciiString}
     * over the same bytes, {@code b -> new AsciiString(b, false)}), made once and kept: {@code wrap}
     * gets this object's own array, which {@link #wipe} zeroes, and must not copy it.
     */
    public synchronized CharSequence view(java.util.function.Function<byte[], CharSequence> wrap) {
        if (view == null) {
            view = wrap.apply(text);
        }
        return view;
    }

    /** The key's length (after the prefix). */
    public int keyLength() {
        return text.length - keyFrom;
    }

    /** Byte {@code i} of the key (after the prefix). */
    public byte keyByte(int i) {
        return text[keyFrom + i];
    }

    /** The prefix and the key overwritten with zeros: the lease is gone. */
    public void wipe() {
        Arrays.fill(text, (byte) 0);
    }

    @Override
    public String toString() {
        return "credential " + fingerprint;
    }
}
