package io.keywarden.issuer;

/**
 * An issuer call failed. {@link #kind} says what happened, {@link #httpStatus} what the server
 * answered (0: no HTTP answer), {@link #retryable} whether backing off and trying again may help
 * (timeouts, refused connections, 5xx) or not (4xx: bad role, bad JWT, denied; configuration).
 * Callers decide on these, never on the message. The message never holds a key, a token or a JWT.
 */
public class IssuerException extends Exception {
    private static final long serialVersionUID = 1L;

    /** What went wrong, for decisions and metrics. */
    public enum Kind {
        /** No answer: refused connection, timeout, TLS failure. Retryable. */
        UNREACHABLE(true),
        /** The server answered 5xx or something malformed. Retryable. */
        SERVER_ERROR(true),
        /** The server refused (4xx): wrong role, denied, unknown path. Not retryable as is. */
        REFUSED(false),
        /** No workload identity (JWT-SVID) to log in with. */
        IDENTITY(true),
        /** keywarden's own configuration or policy cannot work (no such instance, no params). */
        CONFIG(false);

        private final boolean retryable;

        Kind(boolean retryable) {
            this.retryable = retryable;
        }

        public boolean retryable() {
            return retryable;
        }
    }

    private final Kind kind;
    private final boolean retryable;
    private final int httpStatus;

    public IssuerException(String message, Kind kind) {
        this(message, kind, kind.retryable(), 0);
    }

    public IssuerException(String message, Kind kind, int httpStatus) {
        this(message, kind, kind.retryable(), httpStatus);
    }

    /** With what caused it (kept for the log; its message must name no secret, as this one's). */
    public IssuerException(String message, Kind kind, Throwable cause) {
        this(message, kind, kind.retryable(), 0, cause);
    }

    public IssuerException(String message, Kind kind, boolean retryable, int httpStatus) {
        this(message, kind, retryable, httpStatus, null);
    }

    private IssuerException(String message, Kind kind, boolean retryable, int httpStatus, Throwable cause) {
        super(message, cause, false, false);
        this.kind = kind;
        this.retryable = retryable;
        this.httpStatus = httpStatus;
    }

    /** An HTTP-level failure: {@code status} 0 for none; 4xx refused, 5xx a server error. */
    public static IssuerException http(String message, int status) {
        Kind k = status == 0 ? Kind.UNREACHABLE : status >= 400 && status < 500 ? Kind.REFUSED : Kind.SERVER_ERROR;
        return new IssuerException(message, k, k.retryable() || status == 429, status);
    }

    public Kind kind() {
        return kind;
    }

    /** The HTTP status the issuer answered, or 0 when there was no HTTP answer. */
    public int httpStatus() {
        return httpStatus;
    }

    public boolean retryable() {
        return retryable;
    }
}
