package io.keywarden.daemon.issuer;

/**
 * An issuer call failed. {@code retryable} tells the lifecycle whether backing off and trying
 * again may help (5xx, timeouts, refused connections) or not (4xx: bad role, bad JWT, denied).
 * The message never holds a key, a token or a JWT.
 */
public class IssuerException extends Exception {
    private static final long serialVersionUID = 1L;
    private final boolean retryable;
    private final int httpStatus;

    public IssuerException(String message, boolean retryable) {
        this(message, retryable, 0);
    }

    public IssuerException(String message, boolean retryable, int httpStatus) {
        super(message, null, false, false);
        this.retryable = retryable;
        this.httpStatus = httpStatus;
    }

    /** The HTTP status the issuer answered, or 0 when there was no HTTP answer. */
    public int httpStatus() {
        return httpStatus;
    }

    public boolean retryable() {
        return retryable;
    }
}
