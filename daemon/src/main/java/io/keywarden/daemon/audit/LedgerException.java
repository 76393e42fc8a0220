package io.keywarden.daemon.audit;

/** The ledger cannot record: whatever the record was for must not take effect. */
public class LedgerException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public LedgerException(String message) {
        super(message, null, false, false);
    }
}
