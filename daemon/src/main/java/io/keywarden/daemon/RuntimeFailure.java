package io.keywarden.daemon;

/**
 * Something outside the user's input failed (the daemon cannot be reached, a resource is gone):
 * printed as one line on stderr, exit code 3, never with a stack trace or an exception's class name.
 */
public class RuntimeFailure extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public RuntimeFailure(String message) {
        super(message, null, false, false);
    }
}
