package io.keywarden.policy;

import java.util.regex.Pattern;

/** Names of keys and workloads: they become directory names and Vault path parts. */
public final class Names {
    private static final Pattern NAME = Pattern.compile("[a-z0-9][a-z0-9_-]{0,62}");

    private Names() {
    }

    public static boolean isValid(String name) {
        return name != null && NAME.matcher(name).matches();
    }

    /** @throws IllegalArgumentException when {@code name} is not a valid key or workload name */
    public static String check(String name) {
        if (!isValid(name)) {
            throw new IllegalArgumentException("'" + name + "' is not a valid name: use 1-63 of a-z, 0-9, '_' or '-',"
                    + " starting with a letter or digit");
        }
        return name;
    }
}
