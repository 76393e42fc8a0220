package io.keywarden.delivery;

import io.keywarden.attestation.Attestation;

/**
 * What the access core decided for one caller and key. Front ends map it to their own answer
 * (KeyFS: 0 / ENOENT / EACCES / EIO; a gateway: 200 / 404 / 403 / 503), and never decide
 * themselves. Every {@link Denied} and {@link Granted} was recorded before it was returned.
 */
public sealed interface Decision {

    /** The caller may have it; {@code issued} is the key for files that carry it, null for the others. */
    record Granted(Attestation.Identified who, IssuedKey issued) implements Decision {
    }

    /** The caller may not: the policy, the readers, an operator's block, or it is not a workload at all. */
    record Denied(Attestation who, DenyReason code, String reason) implements Decision {
    }

    /** The caller may, but no key can be served now (issuer failure, timeout, expired, not recorded). */
    record Unavailable(Attestation.Identified who, UnavailableReason code, String reason) implements Decision {
    }

    /** No such key in the policy. Not recorded: a name nobody defined is not an access. */
    record NoSuchKey(String key) implements Decision {
    }

    /** Why nothing was served, as the ledger's {@code code} field says it ({@code not_granted}, {@code issuer_timeout} …). */
    sealed interface Refusal permits DenyReason, UnavailableReason {
        default String label() {
            return ((Enum<?>) this).name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** Why a caller was refused. */
    enum DenyReason implements Refusal {
        /** No workload of the policy (unknown, ambiguous, traced, vanished, not in SPIRE). */
        UNIDENTIFIED,
        /** The workload exists but the key is not granted to it. */
        NOT_GRANTED,
        /** The workload's {@code readers} refuse this process (uid, exe, digest). */
        READERS,
        /** An operator blocked the workload (kill switch). */
        BLOCKED,
        /** The process exited, or its pid was reused, while its key was being issued. */
        PROCESS_GONE
    }

    /** Why a permitted caller gets no key now. */
    enum UnavailableReason implements Refusal {
        /** The issuer failed or is backing off; {@code status} says why. */
        ISSUER_FAILED,
        /** The issuer did not answer within the open timeout. */
        ISSUER_TIMEOUT,
        /** The key's lifetime ended without a refresh: never served. */
        EXPIRED,
        /** The access could not be recorded in the ledger, so it is not given. */
        NOT_RECORDED,
        /** The daemon is stopping. */
        SHUTTING_DOWN
    }
}
