package io.keywarden.policy;

import java.time.Duration;
import java.time.format.DateTimeParseException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Durations as people write them: {@code 90s}, {@code 15m}, {@code 1h30m}, {@code 250ms}, or ISO-8601 {@code PT15M}. */
public final class Durations {
    private static final Pattern UNIT = Pattern.compile("(\\d{1,9})(ms|h|m|s|d)");
    private static final Pattern WHOLE = Pattern.compile("(?:\\d{1,9}(?:ms|h|m|s|d))+");

    private Durations() {
    }

    /** @throws IllegalArgumentException naming what is wrong with {@code text} */
    public static Duration parse(String text) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("a duration is required (e.g. 90s, 15m, 1h30m, PT15M)");
        }
        String t = text.trim();
        if (t.startsWith("P") || t.startsWith("p")) {
            try {
                Duration d = Duration.parse(t);
                if (d.isNegative()) {
                    throw new IllegalArgumentException("'" + text + "' is negative");
                }
                return d;
            } catch (DateTimeParseException e) {
                throw new IllegalArgumentException("'" + text + "' is not an ISO-8601 duration (e.g. PT15M)");
            }
        }
        if (!WHOLE.matcher(t).matches()) {
            throw new IllegalArgumentException("'" + text + "' is not a duration (e.g. 90s, 15m, 1h30m, PT15M)");
        }
        Duration total = Duration.ZERO;
        Matcher m = UNIT.matcher(t);
        while (m.find()) {
            long n = Long.parseLong(m.group(1));
            total = total.plus(switch (m.group(2)) {
                case "ms" -> Duration.ofMillis(n);
                case "s" -> Duration.ofSeconds(n);
                case "m" -> Duration.ofMinutes(n);
                case "h" -> Duration.ofHours(n);
                default -> Duration.ofDays(n);
            });
        }
        return total;
    }

    /** Short human form, the inverse of {@link #parse} for whole seconds: {@code 1h30m}, {@code 90s} → {@code 1m30s}. */
    public static String format(Duration d) {
        if (d.isZero()) {
            return "0s";
        }
        StringBuilder b = new StringBuilder();
        long h = d.toHours();
        int m = d.toMinutesPart();
        int s = d.toSecondsPart();
        int ms = d.toMillisPart();
        if (h > 0) {
            b.append(h).append('h');
        }
        if (m > 0) {
            b.append(m).append('m');
        }
        if (s > 0) {
            b.append(s).append('s');
        }
        if (ms > 0) {
            b.append(ms).append("ms");
        }
        return b.toString();
    }
}
