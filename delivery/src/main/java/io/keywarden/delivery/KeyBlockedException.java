package io.keywarden.delivery;

/** An operator blocked this workload (kill switch with --block): KeyFS answers EACCES, not EIO. */
public class KeyBlockedException extends KeyUnavailableException {
    private static final long serialVersionUID = 1L;

    public KeyBlockedException(String reason) {
        super(reason);
    }
}
