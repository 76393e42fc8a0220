package io.keywarden.daemon;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** Version, build time and git commit, filtered into the jar at build time. */
public record BuildInfo(String version, String built, String commit) {

    public static BuildInfo load() {
        Properties p = new Properties();
        try (InputStream in = BuildInfo.class.getResourceAsStream("version.properties")) {
            if (in != null) {
                p.load(in);
            }
        } catch (IOException e) {
            // Fall through to "unknown": a missing resource must not stop `keywarden version`.
        }
        String commit = p.getProperty("commit", "unknown");
        return new BuildInfo(p.getProperty("version", "unknown"), p.getProperty("built", "unknown"),
                commit.isBlank() || commit.startsWith("${") ? "unknown" : commit);
    }
}
