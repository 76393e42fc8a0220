package io.keywarden.policy.yaml;

import java.util.List;

/** A mapping with string keys, in file order. Duplicate keys are rejected by the reader. */
public record YamlMap(Location location, List<Entry> entries) implements YamlNode {

    public record Entry(String key, Location keyLocation, YamlNode value) {
    }

    public YamlMap {
        entries = List.copyOf(entries);
    }

    @Override
    public String describe() {
        return "a mapping";
    }
}
