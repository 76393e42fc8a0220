package io.keywarden.daemon;

/** A command whose capability has not landed yet: says so and exits 3, never pretends. */
public class NotYetAvailable extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public NotYetAvailable(String what) {
        super(what + " is not yet available in this build", null, false, false);
    }
}
