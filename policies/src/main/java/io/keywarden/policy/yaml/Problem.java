package io.keywarden.policy.yaml;

/** One thing wrong with an input file, printed as {@code FILE:LINE:COL: message}. */
public record Problem(Location location, String message) implements Comparable<Problem> {

    public String format() {
        return printable(location + ": " + message);
    }

    /** Control and invisible formatting characters (e.g. bidi overrides) escaped, so a message cannot forge output. */
    public static String printable(String s) {
        StringBuilder b = null;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean bad = c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || Character.getType(c) == Character.FORMAT;
            if (bad && b == null) {
                b = new StringBuilder(s.length() + 8).append(s, 0, i);
            }
            if (b != null) {
                if (bad) {
                    b.append(String.format("\\u%04x", (int) c));
                } else {
                    b.append(c);
                }
            }
        }
        return b == null ? s : b.toString();
    }

    @Override
    public int compareTo(Problem o) {
        int c = Integer.compare(location.line(), o.location.line());
        if (c == 0) {
            c = Integer.compare(location.column(), o.location.column());
        }
        return c != 0 ? c : message.compareTo(o.message);
    }

    @Override
    public String toString() {
        return format();
    }
}
