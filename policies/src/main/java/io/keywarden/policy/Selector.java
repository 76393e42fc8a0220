package io.keywarden.policy;

import java.util.Locale;
import java.util.regex.Pattern;

/** A condition on a process, written {@code type:name:value}, e.g. {@code unix:uid:1001}. */
public record Selector(Kind kind, String value) {
    private static final Pattern HEX64 = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern POD_UID = Pattern.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    private static final Pattern CONTAINER_ID = Pattern.compile("[0-9a-f]{12,64}");

    public enum Kind {
        UNIX_UID("unix:uid"),
        UNIX_GID("unix:gid"),
        UNIX_PATH("unix:path"),
        UNIX_SHA256("unix:sha256"),
        K8S_POD_UID("k8s:pod-uid"),
        CONTAINER_ID("container:id");

        private final String prefix;

        Kind(String prefix) {
            this.prefix = prefix;
        }

        public String prefix() {
            return prefix;
        }
    }

    public Selector {
        checkValue(kind, value);
    }

    /** @throws IllegalArgumentException naming the problem with {@code text} */
    public static Selector parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException("a selector is required");
        }
        for (Kind k : Kind.values()) {
            String p = k.prefix + ":";
            if (text.startsWith(p)) {
                return new Selector(k, text.substring(p.length()));
            }
        }
        StringBuilder known = new StringBuilder();
        for (Kind k : Kind.values()) {
            known.append(known.length() == 0 ? "" : ", ").append(k.prefix).append(":…");
        }
        throw new IllegalArgumentException("unknown selector '" + text + "' (known: " + known + ")");
    }

    private static void checkValue(Kind kind, String v) {
        String bad = switch (kind) {
            case UNIX_UID, UNIX_GID -> isId(v) ? null : "must be a number from 0 to 4294967294";
            case UNIX_PATH -> Paths.canonicalProblem(v).orElse(null);
            case UNIX_SHA256 -> HEX64.matcher(v).matches() ? null : "must be 64 lower-case hex digits";
            case K8S_POD_UID -> POD_UID.matcher(v.toLowerCase(Locale.ROOT)).matches() ? null : "must be a pod UID (8-4-4-4-12 hex)";
            case CONTAINER_ID -> CONTAINER_ID.matcher(v).matches() ? null : "must be 12 to 64 lower-case hex digits";
        };
        if (bad != null) {
            throw new IllegalArgumentException("selector " + kind.prefix + ":" + v + ": the value " + bad);
        }
    }

    private static boolean isId(String v) {
        return Paths.isCanonicalId(v);
    }

    /** Whether the process satisfies this selector. Only {@code unix:sha256} hashes the executable. */
    public boolean matches(ProcessFacts p) {
        return switch (kind) {
            case UNIX_UID -> Integer.toUnsignedString(p.uid()).equals(value);
            case UNIX_GID -> Integer.toUnsignedString(p.gid()).equals(value);
            case UNIX_PATH -> p.exeIs(value);
            case UNIX_SHA256 -> p.exeSha256().map(value::equals).orElse(false);
            case K8S_POD_UID -> p.podUid().map(u -> u.equalsIgnoreCase(value)).orElse(false);
            case CONTAINER_ID -> p.containerId().map(value::equals).orElse(false);
        };
    }

    @Override
    public String toString() {
        return kind.prefix + ":" + value;
    }
}
