package io.keywarden.daemon.ops;

/** What the audit trail counts besides its ledger records: issuances, refreshes, revocations, accesses, ledger failures. */
public interface AuditMetrics {
    /** How an issuance or a refresh ended ({@code outcome} label). */
    enum Outcome {
        OK("ok"), ERROR("error");

        private final String label;

        Outcome(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    /** A caller's access to a key ({@code decision} label). */
    enum Access {
        GRANTED("granted"), DENIED("denied");

        private final String label;

        Access(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    void issued(String key, Outcome outcome);

    void refreshed(String key, Outcome outcome);

    /** A lease revoked at the issuer; {@code reason}: the revoke reason's label ({@code lifecycle.RevokeReason}). */
    void revoked(String key, String reason);

    /** A revoke the issuer did not take (it is tried again while the lease lives). */
    void revokeFailed(String key);

    void access(String workload, String key, Access decision);

    /** A ledger write that failed. */
    void ledgerError();
}
