package io.keywarden.daemon.lifecycle;

import java.util.Locale;

/** Why a lease was revoked: a fixed set (the metric label), with the words for the ledger beside it. */
public enum RevokeReason {
    /** A refresh replaced it and its overlap ended. */
    REFRESHED,
    /** No process of the workload was alive for idleRevoke. */
    IDLE,
    /** The daemon stopped with revokeOnShutdown. */
    SHUTDOWN,
    /** An operator revoked or blocked (admin API). */
    OPERATOR,
    /** The policy no longer grants the key to the workload. */
    POLICY,
    /** It expired. */
    EXPIRED,
    /** The spend guard acted. */
    GUARD;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
