package io.keywarden.daemon.audit;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Every event the ledger records, by the name it carries on the wire ({@code event}), with the
 * fields it may carry beside the envelope ({@code seq ts event node prev hash}). A record is
 * written through {@link AuditTrail#record(LedgerEvent, Map)}, which refuses a field its event
 * does not declare ({@link #check}): a misspelt event or field cannot reach the ledger,
 * {@code audit show --event} knows them all, and docs/operations.md's table of events is held to
 * this list by {@code LedgerEventTest}.
 */
public enum LedgerEvent {
    DAEMON_STARTED("daemon.started", "reason", "version"),
    DAEMON_STOPPED("daemon.stopped", "reason"),
    DAEMON_UNCLEAN_STOP("daemon.unclean_stop", "last_seq", "last_event", "last_ts", "torn_record", "leases_left"),
    DAEMON_RECOVERED("daemon.recovered", "revoked", "left", "reason"),
    DAEMON_HANDOVER("daemon.handover", "to_pid", "leases"),
    HANDOVER_REFUSED("handover.refused", "pid", "uid", "reason"),
    POLICY_LOADED("policy.loaded", "reason"),
    POLICY_REJECTED("policy.rejected", "reason"),
    KEY_ISSUED("key.issued", Fields.KEY),
    KEY_REFRESHED("key.refreshed", Fields.KEY),
    KEY_REVOKED("key.revoked", Fields.KEY),
    KEY_REVOKE_FAILED("key.revoke_failed", Fields.KEY, "attempt", "retry_at"),
    KEY_EXPIRED("key.expired", Fields.KEY),
    KEY_ORPHANED("key.orphaned", Fields.KEY),
    ISSUE_FAILED("issue.failed", Fields.KEY),
    ACCESS_GRANTED("access.granted", Fields.ACCESS, "lease_id", "repeats", "window_s"),
    ACCESS_DENIED("access.denied", Fields.ACCESS, "code", "repeats", "window_s"),
    ADMIN_REVOKE("admin.revoke", Fields.OPERATOR, "key"),
    ADMIN_BLOCK("admin.block", Fields.OPERATOR, "key"),
    ADMIN_UNBLOCK("admin.unblock", Fields.OPERATOR),
    LEDGER_PRUNED("ledger.pruned", "segments", "kept_from_seq", "kept_from_prev", "reason"),
    GUARD_BREACH("guard.breach", "workload", "spiffe_id", "kind", "observed", "limit", "action", "sensor"),
    GUARD_UNBLOCK("guard.unblock", "spiffe_id", "reason"),
    USAGE("usage", "workload", "minute", "tokens_in", "tokens_out", "requests", "models"),
    CSI_PUBLISHED("csi.published", "volume_id", "target", "pod.namespace", "pod.name", "pod.uid",
            "serviceAccount.name", "preissued"),
    CSI_UNPUBLISHED("csi.unpublished", "volume_id", "target"),
    FLEET_BLOCK_APPLIED("fleet.block.applied", Fields.FLEET),
    FLEET_UNBLOCK_APPLIED("fleet.unblock.applied", Fields.FLEET);

    /** Field groups several events share. */
    static final class Fields {
        static final String[] KEY = {"workload", "spiffe_id", "key", "lease_id", "provider_key_id", "fingerprint",
                "expires_at", "provider_expires_at", "revocable", "issuer", "reason"};
        static final String[] ACCESS = {"workload", "pid", "uid", "gid", "exe", "spiffe_id", "key", "fingerprint",
                "reason"};
        static final String[] OPERATOR = {"workload", "spiffe_id", "operator", "reason"};
        static final String[] FLEET = {"spiffe_id", "workload", "from_node", "at", "reason"};

        private Fields() {
        }
    }

    private final String wire;
    private final Set<String> fields;

    LedgerEvent(String wire, String... fields) {
        this(wire, new String[0], fields);
    }

    LedgerEvent(String wire, String[] group, String... more) {
        this.wire = wire;
        this.fields = java.util.Collections.unmodifiableSet(new LinkedHashSet<>(
                Stream.concat(Arrays.stream(group), Arrays.stream(more)).toList()));
    }

    /** The name in the ledger's {@code event} field. */
    public String wire() {
        return wire;
    }

    /** The fields this event may carry, in the order the docs list them. */
    public Set<String> fields() {
        return fields;
    }

    /**
     * Refuses fields this event does not declare (a programming error: nothing is written). Every
     * declared field is optional: an event leaves out what it does not know (a lease's fields
     * when there is no lease).
     */
    public void check(Map<String, ?> given) {
        List<String> unknown = new ArrayList<>();
        for (String k : given.keySet()) {
            if (!fields.contains(k)) {
                unknown.add(k);
            }
        }
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException(wire + " does not declare the field(s) " + unknown + " (it has "
                    + fields + "): add them to LedgerEvent and docs/operations.md");
        }
    }

    public static Optional<LedgerEvent> of(String wire) {
        return Arrays.stream(values()).filter(e -> e.wire.equals(wire)).findFirst();
    }
}
