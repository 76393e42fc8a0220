package io.keywarden.policy.yaml;

import java.util.List;

/** An input file was rejected; carries every problem found, sorted by position. */
public class ProblemsException extends Exception {
    private static final long serialVersionUID = 1L;
    private final transient List<Problem> problems;

    public ProblemsException(List<Problem> problems) {
        super(problems.isEmpty() ? "invalid input" : problems.get(0).format()
                + (problems.size() > 1 ? " (and " + (problems.size() - 1) + " more)" : ""));
        this.problems = problems.stream().sorted().toList();
    }

    public List<Problem> problems() {
        return problems;
    }
}
