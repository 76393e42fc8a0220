package io.keywarden.daemon;

import java.util.List;

/**
 * Bad input (config, policy, a flag, a file the daemon was pointed at): one line per problem,
 * each naming what and where. Thrown by any layer; the CLI prints the lines on stderr and exits 2
 * ({@code cli.InputProblem} is the CLI's own, for its arguments), never with a stack trace.
 */
public class InputProblem extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient List<String> lines;

    public InputProblem(List<String> lines) {
        super(String.join("; ", lines), null, false, false);
        this.lines = List.copyOf(lines);
    }

    public InputProblem(String line) {
        this(List.of(line));
    }

    /** With what caused it, for the log. */
    public InputProblem(String line, Throwable cause) {
        super(line, cause, false, false);
        this.lines = List.of(line);
    }

    public List<String> lines() {
        return lines;
    }
}
