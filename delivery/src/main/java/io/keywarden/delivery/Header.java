package io.keywarden.delivery;

import java.util.ArrayList;
import java.util.List;

/**
 * An HTTP header a caller must send with a credential besides {@code Authorization} (Anthropic's
 * OAuth beta header, say): never secret. Served as the key's {@code headers} file, one
 * {@code Name: value} per line, and set by the gateway.
 */
public record Header(String name, String value) {
    public Header {
        if (name == null || name.isBlank() || name.indexOf(':') >= 0 || name.indexOf('\n') >= 0 || value == null
                || value.indexOf('\n') >= 0) {
            throw new IllegalArgumentException("not an HTTP header: " + name);
        }
    }

    /** The {@code headers} file's text: one {@code Name: value} line each; empty for none. */
    public static String file(List<Header> headers) {
        StringBuilder b = new StringBuilder();
        for (Header h : headers) {
            b.append(h.name).append(": ").append(h.value).append('\n');
        }
        return b.toString();
    }

    /** The headers of a {@code headers} file's text (lines without a name are skipped). */
    public static List<Header> parse(String file) {
        List<Header> out = new ArrayList<>();
        for (String line : file == null ? new String[0] : file.split("\n")) {
            int colon = line.indexOf(':');
            if (colon > 0) {
                out.add(new Header(line.substring(0, colon).trim(), line.substring(colon + 1).trim()));
            }
        }
        return List.copyOf(out);
    }
}
