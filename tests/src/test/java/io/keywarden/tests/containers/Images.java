package io.keywarden.tests.containers;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The image each suite runs: {@code -Dkeywarden.image.NAME=IMAGE} if given, else what
 * deploy/docker/build-images.sh wrote to {@code images.env} (local images built without a registry;
 * {@code -Dkeywarden.images=FILE}, default ~/.cache/keywarden/images/images.env), else the public image.
 */
final class Images {
    private static final Map<String, String> BUILT = read();

    private Images() {
    }

    static String get(String name, String publicImage) {
        String given = System.getProperty("keywarden.image." + name, "");
        return !given.isBlank() ? given : BUILT.getOrDefault(name, publicImage);
    }

    /** Whether build-images.sh wrote the image names (so every image is local and nothing is pulled). */
    static boolean built() {
        return !BUILT.isEmpty();
    }

    private static Map<String, String> read() {
        Path f = Path.of(System.getProperty("keywarden.images",
                System.getProperty("user.home") + "/.cache/keywarden/images/images.env"));
        Map<String, String> out = new HashMap<>();
        try {
            for (String line : Files.readAllLines(f)) {
                int eq = line.indexOf('=');
                if (!line.startsWith("#") && eq > 0) {
                    out.put(line.substring(0, eq).trim(), line.substring(eq + 1).trim());
                }
            }
        } catch (IOException e) {
            return Map.of();
        }
        return Map.copyOf(out);
    }
}
