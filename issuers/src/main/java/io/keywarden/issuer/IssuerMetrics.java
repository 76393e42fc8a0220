package io.keywarden.issuer;

import java.time.Duration;

/** What the issuers report: the time each call to a provider took ({@code keywarden_issuer_request_seconds}). */
public interface IssuerMetrics {
    /** The calls an issuer makes, as the {@code op} label says them. */
    enum Op {
        ISSUE("issue"), REVOKE("revoke");

        private final String label;

        Op(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    void issuerRequest(String issuer, Op op, Duration took);
}
