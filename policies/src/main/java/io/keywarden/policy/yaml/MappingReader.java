package io.keywarden.policy.yaml;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * Reads the fields of one mapping strictly: every key must be claimed by the caller, and
 * whatever is left over is reported as unknown, with the keys that would have been accepted.
 * Type errors are added to {@link Problems}; the reader never throws for bad input.
 */
public final class MappingReader {
    private final YamlMap map;
    private final String where;
    private final Problems problems;
    private final Map<String, YamlMap.Entry> remaining = new LinkedHashMap<>();
    private final List<String> known = new ArrayList<>();

    private MappingReader(YamlMap map, String where, Problems problems) {
        this.map = map;
        this.where = where;
        this.problems = problems;
        map.entries().forEach(e -> remaining.put(e.key(), e));
    }

    /** Returns a reader if {@code node} is a mapping, else reports the problem and returns empty. */
    public static Optional<MappingReader> of(YamlNode node, String where, Problems problems) {
        if (node instanceof YamlMap m) {
            return Optional.of(new MappingReader(m, where, problems));
        }
        problems.add(node, where + " must be a mapping, not " + node.describe());
        return Optional.empty();
    }

    public YamlMap map() {
        return map;
    }

    /** Claims {@code key}; an explicit {@code null} value counts as absent. */
    public Optional<YamlNode> optional(String key) {
        known.add(key);
        YamlMap.Entry e = remaining.remove(key);
        if (e == null || (e.value() instanceof YamlScalar s && s.kind() == YamlScalar.Kind.NULL)) {
            return Optional.empty();
        }
        return Optional.of(e.value());
    }

    public Optional<YamlNode> required(String key) {
        Optional<YamlNode> v = optional(key);
        if (v.isEmpty()) {
            problems.add(map.location(), where + ": missing required key '" + key + "'");
        }
        return v;
    }

    public Optional<String> optionalString(String key) {
        return optional(key).flatMap(n -> string(n, where + "." + key));
    }

    public Optional<String> requiredString(String key) {
        return required(key).flatMap(n -> string(n, where + "." + key));
    }

    public Optional<Boolean> optionalBoolean(String key) {
        return optional(key).flatMap(n -> {
            if (n instanceof YamlScalar s && s.kind() == YamlScalar.Kind.BOOLEAN) {
                return Optional.of(Boolean.parseBoolean(s.text().toLowerCase(java.util.Locale.ROOT)));
            }
            problems.add(n, where + "." + key + " must be true or false, not " + n.describe());
            return Optional.empty();
        });
    }

    /** A whole number (YAML integer) at {@code key}. */
    public Optional<Long> optionalLong(String key) {
        return optional(key).flatMap(n -> {
            if (n instanceof YamlScalar s && s.kind() == YamlScalar.Kind.INTEGER) {
                try {
                    return Optional.of(Long.parseLong(s.text().replace("_", "")));
                } catch (NumberFormatException e) {
                    // too large: reported below
                }
            }
            problems.add(n, where + "." + key + " must be a whole number, not " + n.describe());
            return Optional.empty();
        });
    }

    /** Parses a string value with {@code parse}; its IllegalArgumentException message is reported. */
    public <T> Optional<T> optionalParsed(String key, Function<String, T> parse) {
        return optionalString(key).flatMap(s -> parsed(optionalNodeLocation(key), where + "." + key, s, parse));
    }

    private Location optionalNodeLocation(String key) {
        return map.entries().stream().filter(e -> e.key().equals(key))
                .map(e -> e.value().location()).findFirst().orElse(map.location());
    }

    public <T> Optional<T> parsed(Location at, String what, String text, Function<String, T> parse) {
        try {
            return Optional.of(parse.apply(text));
        } catch (IllegalArgumentException e) {
            problems.add(at, what + ": " + e.getMessage());
            return Optional.empty();
        }
    }

    public Optional<String> string(YamlNode n, String what) {
        if (n instanceof YamlScalar s && s.kind() == YamlScalar.Kind.STRING) {
            return Optional.of(s.text());
        }
        problems.add(n, what + " must be a string, not " + n.describe());
        return Optional.empty();
    }

    /** Reports every key nobody claimed. Call after all fields were read. */
    public void rejectUnknown() {
        for (YamlMap.Entry e : remaining.values()) {
            problems.add(e.keyLocation(), "unknown key '" + e.key() + "' in " + where
                    + " (expected one of: " + String.join(", ", known) + ")");
        }
        remaining.clear();
    }

    public Problems problems() {
        return problems;
    }
}
