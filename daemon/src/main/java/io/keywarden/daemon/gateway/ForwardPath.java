package io.keywarden.daemon.gateway;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * The part of a gateway path after {@code /<key>/}, normalised once before anything is forwarded:
 * raw bytes limited to RFC 3986 path characters, percent-decoded exactly once to strict UTF-8
 * (overlong forms such as {@code %c0%ae} are malformed), and refused when the decoded text holds a
 * dot segment, an empty segment, a backslash, a {@code ;} parameter, a {@code %} (double encoding),
 * an encoded {@code /} or a control character. What is forwarded is the decoded text re-encoded,
 * so the upstream sees one unambiguous path under its base. The query is checked the same way but
 * forwarded as sent (it cannot leave the path).
 */
final class ForwardPath {
    private ForwardPath() {
    }

    /** A path or query that cannot be forwarded; the message names why, never echoing more than a little of it. */
    static final class Refused extends Exception {
        Refused(String why) {
            super(why, null, false, false);
        }
    }

    /** The normalised, re-encoded form of {@code raw} (no leading slash); {@code ""} stays {@code ""}. */
    static String normalise(String raw) throws Refused {
        return raw.isEmpty() || plain(raw) ? raw : decodeAndEncode(raw);
    }

    /** {@link #normalise} the long way: decoded, checked and re-encoded (what {@link #plain} spares). */
    static String decodeAndEncode(String raw) throws Refused {
        ByteArrayOutputStream decoded = new ByteArrayOutputStream(raw.length());
        for (int i = 0; i < raw.length(); i++) {
            char c = raw.charAt(i);
            if (c == '%') {
                if (i + 2 >= raw.length() || hex(raw.charAt(i + 1)) < 0 || hex(raw.charAt(i + 2)) < 0) {
                    throw new Refused("the path has a malformed percent-encoding");
                }
                int b = hex(raw.charAt(i + 1)) * 16 + hex(raw.charAt(i + 2));
                if (b == '/') {
                    throw new Refused("the path has an encoded '/' (%2F)");
                }
                decoded.write(b);
                i += 2;
            } else if (pathChar(c) && c != ';') {
                decoded.write(c);
            } else {
                throw new Refused(c == ';' ? "the path has a ';' parameter" : "the path has a character that must be"
                        + " percent-encoded (" + describe(c) + ")");
            }
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(decoded.toByteArray())).toString();
        } catch (CharacterCodingException e) {
            throw new Refused("the path does not decode to UTF-8 (overlong or malformed bytes)");
        }
        StringBuilder out = new StringBuilder(text.length() + 16);
        String[] segments = text.split("/", -1);
        for (int s = 0; s < segments.length; s++) {
            String seg = segments[s];
            if (seg.equals(".") || seg.equals("..")) {
                throw new Refused("the path has a dot segment");
            }
            if (seg.isEmpty() && s < segments.length - 1) {
                throw new Refused("the path has an empty segment ('//')");
            }
            for (int i = 0; i < seg.length(); i++) {
                char c = seg.charAt(i);
                if (c == '%' || c == '\\' || c == ';' || c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)) {
                    throw new Refused("the decoded path has a '" + (c < 0x20 || c >= 0x7f ? describe(c) : c + "'")
                            + (c == '%' ? " (double encoding)" : ""));
                }
            }
            if (s > 0) {
                out.append('/');
            }
            encode(seg, out);
        }
        return out.toString();
    }

    /**
     * True when {@code raw} is already its own normal form: path characters only (no {@code %}, no
     * {@code ;}, nothing to decode or re-encode), no dot segment and no empty one but the last. The
     * common path ({@code v1/chat/completions}) is then returned as it is, with no copy.
     */
    static boolean plain(String raw) {
        int segStart = 0;
        for (int i = 0; i <= raw.length(); i++) {
            char c = i < raw.length() ? raw.charAt(i) : '/';
            if (c == '/') {
                int len = i - segStart;
                boolean last = i == raw.length();
                if ((len == 0 && !last) || (len == 1 && raw.charAt(segStart) == '.')
                        || (len == 2 && raw.charAt(segStart) == '.' && raw.charAt(segStart + 1) == '.')) {
                    return false;
                }
                segStart = i + 1;
            } else if (c >= 0x80 || !PLAIN[c]) {
                return false;
            }
        }
        return true;
    }

    /** RFC 3986 pchar without '%' and ';' (what {@link #normalise} forwards as it is), by ASCII code. */
    private static final boolean[] PLAIN = new boolean[128];
    /** RFC 9110 token characters, by ASCII code. */
    private static final boolean[] TOKEN = new boolean[128];

    static {
        for (char c = 0; c < 128; c++) {
            PLAIN[c] = pathChar(c) && c != ';' && c != '/';
            TOKEN[c] = c > 0x20 && c < 0x7f && "\"(),/:;<=>?@[\\]{}".indexOf(c) < 0;
        }
    }

    /** Checks a raw query: RFC 3986 query characters and well-formed percent-encodings only. */
    static void checkQuery(String q) throws Refused {
        if (q == null) {
            return;
        }
        for (int i = 0; i < q.length(); i++) {
            char c = q.charAt(i);
            if (c == '%') {
                if (i + 2 >= q.length() || hex(q.charAt(i + 1)) < 0 || hex(q.charAt(i + 2)) < 0) {
                    throw new Refused("the query has a malformed percent-encoding");
                }
            } else if (!(pathChar(c) || c == '/' || c == '?')) {
                throw new Refused("the query has a character that must be percent-encoded (" + describe(c) + ")");
            }
        }
    }

    /** An HTTP field name (RFC 9110 token) and a value without CR, LF, NUL or other controls but tab. */
    static boolean validHeader(String name, String value) {
        if (name == null || name.isEmpty()) {
            return false;
        }
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c >= 0x80 || !TOKEN[c]) {
                return false;
            }
        }
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if ((c < 0x20 && c != '\t') || c == 0x7f || c > 0xff) {
                return false;
            }
        }
        return true;
    }

    /** An HTTP method is a token. */
    static boolean validMethod(String m) {
        return m != null && !m.isEmpty() && m.length() <= 32 && validHeader(m, "");
    }

    private static void encode(String seg, StringBuilder out) {
        for (byte b : seg.getBytes(StandardCharsets.UTF_8)) {
            int c = b & 0xff;
            if (c < 0x80 && pathChar((char) c) && c != ';' && c != '%') {
                out.append((char) c);
            } else {
                out.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
            }
        }
    }

    /** RFC 3986 pchar without '%' (unreserved, sub-delims, ':' and '@'); '/' too, as the separator. */
    private static boolean pathChar(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || "-._~!$&'()*+,;=:@/".indexOf(c) >= 0;
    }

    private static int hex(char c) {
        return Character.digit(c, 16);
    }

    private static String describe(char c) {
        return String.format("U+%04X", (int) c);
    }
}
