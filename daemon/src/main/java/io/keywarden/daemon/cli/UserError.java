package io.keywarden.daemon.cli;

import io.keywarden.daemon.InputProblem;
import java.util.List;

/** A command's own bad input (its arguments): exit code 2, as every {@link InputProblem}. */
final class UserError extends InputProblem {
    private static final long serialVersionUID = 1L;

    UserError(List<String> lines) {
        super(lines);
    }

    UserError(String line) {
        super(line);
    }
}
