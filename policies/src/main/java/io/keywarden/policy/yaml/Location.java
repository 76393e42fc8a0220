package io.keywarden.policy.yaml;

/** A place in a source file: 1-based line and column, as editors count them. */
public record Location(String file, int line, int column) {

    @Override
    public String toString() {
        return file + ":" + line + ":" + column;
    }
}
