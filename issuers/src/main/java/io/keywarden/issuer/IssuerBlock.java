package io.keywarden.issuer;

import io.keywarden.policy.yaml.Location;
import io.keywarden.policy.yaml.MappingReader;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * One instance's block of the config ({@code issuers.<name>}) as its {@link IssuerType} reads it:
 * the mapping, and the config loader's readers for what issuer settings have in common. Every
 * problem is located and named with {@link #where()}; a reader that finds one returns a default
 * or empty and lets the loader report every problem of the file at once.
 */
public interface IssuerBlock {

    /** The instance name. */
    String name();

    /** Where the block is, for messages: {@code issuers.<name>} (or {@code issuer.vault} in the older form). */
    String where();

    /** The block's keys; a key not read through it is refused as unknown. */
    MappingReader reader();

    /** The JWT-SVID audience of {@code identity.audience}, for a type that logs in with it by default. */
    String defaultAudience();

    /** A problem of the block as a whole. */
    void problem(String message);

    /** A problem at {@code at}. */
    void problem(Location at, String message);

    /** An optional http(s) URL at {@code key}, else {@code dflt}. */
    URI url(String key, String dflt);

    /** A required http(s) URL at {@code key}; empty (with a problem) when missing or not one. */
    Optional<URI> requiredUrl(String key);

    /** A non-empty string at {@code key}; required when {@code dflt} is null. */
    String nonEmpty(String key, String dflt);

    /** {@code timeout}: more than 0, at most 5m; 10s by default. */
    Duration timeout();

    /** A path written in the config, resolved against the config file's directory. */
    Path path(String text);

    /** Whether {@code p} is a readable regular file; a problem at {@code at} naming {@code what} when not. */
    boolean readable(Location at, String what, Path p);

    /** A readable file at {@code key}: required (a problem when missing) or optional. */
    default Optional<Path> file(String key, boolean required) {
        MappingReader r = reader();
        Optional<io.keywarden.policy.yaml.YamlNode> n = required ? r.required(key) : r.optional(key);
        return n.flatMap(c -> r.string(c, where() + "." + key).map(this::path)
                .filter(f -> readable(c.location(), where() + "." + key, f)));
    }
}
