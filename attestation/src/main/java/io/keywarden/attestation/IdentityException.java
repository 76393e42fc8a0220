package io.keywarden.attestation;

/** An identity could not be had; {@code retryable} when trying again later may help. Never holds a token. */
public class IdentityException extends Exception {
    private static final long serialVersionUID = 1L;
    private final boolean retryable;

    public IdentityException(String message, boolean retryable) {
        super(message, null, false, false);
        this.retryable = retryable;
    }

    public boolean retryable() {
        return retryable;
    }
}
