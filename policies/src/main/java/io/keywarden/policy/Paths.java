package io.keywarden.policy;

import java.util.Optional;

/** Checks on the executable paths a policy names ({@code unix:path}, {@code readers.exe}). */
final class Paths {
    private Paths() {
    }

    /** Empty when {@code p} is a canonical absolute path; otherwise what is wrong with it. */
    static Optional<String> canonicalProblem(String p) {
        if (!p.startsWith("/")) {
            return Optional.of("must be a canonical absolute path");
        }
        if (p.length() > 4096) {
            return Optional.of("must be at most 4096 characters");
        }
        for (int i = 0; i < p.length(); i++) {
            char c = p.charAt(i);
            if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || Character.getType(c) == Character.FORMAT
                    || Character.isWhitespace(c) && c != ' ') {
                return Optional.of("must be a canonical path: it holds an invisible or control character (U+"
                        + String.format("%04X", (int) c) + ")");
            }
        }
        if (p.contains("//") || p.contains("/./") || p.contains("/../") || p.endsWith("/.") || p.endsWith("/..")
                || (p.length() > 1 && p.endsWith("/"))) {
            return Optional.of("must be a canonical path (no '//', '.', '..' or trailing '/')");
        }
        return Optional.empty();
    }

    /** A uid or gid written canonically: ASCII digits, no sign, no leading zero, below 4294967295. */
    static boolean isCanonicalId(String v) {
        if (v.isEmpty() || v.length() > 10 || (v.length() > 1 && v.charAt(0) == '0')) {
            return false;
        }
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            if (c < '0' || c > '9') {
                return false;
            }
        }
        return Long.parseLong(v) < 4294967295L;
    }
}
