package io.keywarden.policy.yaml;

import java.util.ArrayList;
import java.util.List;

/** Collects problems so that a file's every mistake is reported at once, not one per run. */
public final class Problems {
    private final List<Problem> list = new ArrayList<>();

    public void add(Location where, String message) {
        list.add(new Problem(where, message));
    }

    public void add(YamlNode where, String message) {
        add(where.location(), message);
    }

    public boolean isEmpty() {
        return list.isEmpty();
    }

    public int size() {
        return list.size();
    }

    public List<Problem> list() {
        return List.copyOf(list);
    }

    public void throwIfAny() throws ProblemsException {
        if (!list.isEmpty()) {
            throw new ProblemsException(list);
        }
    }
}
