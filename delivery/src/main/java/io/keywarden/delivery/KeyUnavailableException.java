package io.keywarden.delivery;

/** No key can be served now; the message says why (it ends up in {@code status}, never a secret). */
public class KeyUnavailableException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public KeyUnavailableException(String reason) {
        super(reason, null, false, false);
    }
}
