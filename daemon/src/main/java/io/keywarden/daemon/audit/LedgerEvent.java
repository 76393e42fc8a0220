package io.keywarden.daemon.audit;

import java.util.Arrays;
import java.util.Optional;

/**
 * Every event the ledger records, by the name it carries on the wire ({@code event}). What each
 * holds: docs/operations.md. A record is written through {@link AuditTrail#record(LedgerEvent,
 * java.util.Map)}, so a misspelt event cannot reach the ledger, and {@code audit show --event}
 * knows them all.
 */
public enum LedgerEvent {
    DAEMON_STARTED("daemon.started"),
    DAEMON_STOPPED("daemon.stopped"),
    DAEMON_UNCLEAN_STOP("daemon.unclean_stop"),
    DAEMON_RECOVERED("daemon.recovered"),
    DAEMON_HANDOVER("daemon.handover"),
    HANDOVER_REFUSED("handover.refused"),
    POLICY_LOADED("policy.loaded"),
    POLICY_REJECTED("policy.rejected"),
    KEY_ISSUED("key.issued"),
    KEY_REFRESHED("key.refreshed"),
    KEY_REVOKED("key.revoked"),
    KEY_REVOKE_FAILED("key.revoke_failed"),
    KEY_EXPIRED("key.expired"),
    KEY_ORPHANED("key.orphaned"),
    ISSUE_FAILED("issue.failed"),
    ACCESS_GRANTED("access.granted"),
    ACCESS_DENIED("access.denied"),
    ADMIN_REVOKE("admin.revoke"),
    ADMIN_BLOCK("admin.block"),
    ADMIN_UNBLOCK("admin.unblock"),
    LEDGER_PRUNED("ledger.pruned"),
    GUARD_BREACH("guard.breach"),
    GUARD_UNBLOCK("guard.unblock"),
    USAGE("usage"),
    CSI_PUBLISHED("csi.published"),
    CSI_UNPUBLISHED("csi.unpublished"),
    FLEET_BLOCK_APPLIED("fleet.block.applied"),
    FLEET_UNBLOCK_APPLIED("fleet.unblock.applied");

    private final String wire;

    LedgerEvent(String wire) {
        this.wire = wire;
    }

    /** The name in the ledger's {@code event} field. */
    public String wire() {
        return wire;
    }

    public static Optional<LedgerEvent> of(String wire) {
        return Arrays.stream(values()).filter(e -> e.wire.equals(wire)).findFirst();
    }
}
