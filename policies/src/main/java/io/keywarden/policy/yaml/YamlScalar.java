package io.keywarden.policy.yaml;

/** A scalar with the type YAML resolved for it (so {@code "1001"} and {@code 1001} differ). */
public record YamlScalar(Location location, String text, Kind kind) implements YamlNode {

    public enum Kind { STRING, INTEGER, FLOAT, BOOLEAN, NULL }

    @Override
    public String describe() {
        return switch (kind) {
            case STRING -> "a string";
            case INTEGER -> "an integer";
            case FLOAT -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
        };
    }
}
