package io.keywarden.daemon;

import java.util.List;

/**
 * Bad input from the user (config, policy, arguments): printed one line per problem on stderr,
 * exit code 2, never with a stack trace.
 */
public class UserError extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient List<String> lines;

    public UserError(List<String> lines) {
        super(String.join("; ", lines), null, false, false);
        this.lines = List.copyOf(lines);
    }

    public UserError(String line) {
        this(List.of(line));
    }

    public List<String> lines() {
        return lines;
    }
}
