package io.keywarden.policy.yaml;

import java.util.List;

public record YamlList(Location location, List<YamlNode> items) implements YamlNode {

    public YamlList {
        items = List.copyOf(items);
    }

    @Override
    public String describe() {
        return "a list";
    }
}
