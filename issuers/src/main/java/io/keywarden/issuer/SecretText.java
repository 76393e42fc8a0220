package io.keywarden.issuer;

import com.fasterxml.jackson.core.JsonParser;
import io.keywarden.linux.Secret;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.regex.Pattern;

/**
 * What every issuer does with text that may hold a secret: a JSON string value taken straight off
 * the heap, and a server's message cleaned before it reaches a log, the ledger or {@code status}.
 */
public final class SecretText {
    private static final Pattern SECRETISH = Pattern.compile("(eyJ[A-Za-z0-9_-]{5,}(\\.[A-Za-z0-9_-]*){0,2})|"
            + "((hvs|hvb|s|b)\\.[A-Za-z0-9_-]{16,})|(sk-[A-Za-z0-9_-]{8,})|(ya29\\.[A-Za-z0-9_.-]{8,})");

    private SecretText() {
    }

    /** The parser's current string value, encoded from its own character buffer into a secret; the buffer is wiped. */
    public static Secret offHeap(JsonParser p) throws IOException {
        char[] chars = p.getTextCharacters();
        CharBuffer in = CharBuffer.wrap(chars, p.getTextOffset(), p.getTextLength());
        ByteBuffer out = StandardCharsets.UTF_8.newEncoder().encode(in);
        byte[] bytes = new byte[out.remaining()];
        out.get(bytes);
        Arrays.fill(out.array(), (byte) 0);
        try {
            return Secret.copyOf(bytes);
        } finally {
            Arrays.fill(bytes, (byte) 0);
            Arrays.fill(chars, p.getTextOffset(), p.getTextOffset() + p.getTextLength(), '\0');
        }
    }

    /** Anything that looks like a JWT, a Vault token or an API key removed, control characters dropped, length bounded. */
    public static String clean(String s) {
        String c = SECRETISH.matcher(s == null ? "" : s).replaceAll("[redacted]").replaceAll("\\p{Cntrl}", " ");
        return c.length() > 300 ? c.substring(0, 300) + "…" : c;
    }
}
