package io.keywarden.policy.yaml;

/** A YAML node that remembers where it was written, so that every error can point at it. */
public sealed interface YamlNode permits YamlMap, YamlList, YamlScalar {

    Location location();

    /** A word for error messages: "a mapping", "a list", "a string", "a number"... */
    String describe();
}
