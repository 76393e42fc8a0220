package io.keywarden.policy.yaml;

/** One thing wrong with an input file, printed as {@code FILE:LINE:COL: message}. */
public record Problem(Location location, String message) implements Comparable<Problem> {

    public String format() {
        return location + ": " + message;
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
