package io.keywarden.attestation;

import io.keywarden.policy.Workload;

/**
 * "Who is this caller, and give me its JWT-SVID": what KeyFS and the lease lifecycle use, with
 * the dev provider (selectors + a local signer) or SPIRE (Delegated Identity API) behind it.
 */
public interface IdentityProvider extends WorkloadAttestor {

    /** The name for logs and config: {@code dev} or {@code spire}. */
    String name();

    /**
     * A JWT-SVID of {@code workload} for {@code audience} (each issuer instance asks for the one it
     * needs). {@code process} is one of its live processes when there is one (SPIRE needs a PID);
     * blocking, never on an event loop or a FUSE worker.
     */
    JwtSvid fetchJwtSvid(Workload workload, ProcessInfo process, String audience) throws IdentityException;

    /**
     * A JWT-SVID that was not handed out before (for providers that accept an assertion once):
     * bypasses any cache. By default the same as {@link #fetchJwtSvid(Workload, ProcessInfo, String)}.
     */
    default JwtSvid fetchFreshJwtSvid(Workload workload, ProcessInfo process, String audience) throws IdentityException {
        return fetchJwtSvid(workload, process, audience);
    }

    /** The audience of the config's {@code identity.audience}, for issuers that name none. */
    String defaultAudience();

    default JwtSvid fetchJwtSvid(Workload workload, ProcessInfo process) throws IdentityException {
        return fetchJwtSvid(workload, process, defaultAudience());
    }

    /** Why no workload can be identified right now (for /readyz), or empty when they can. Blocking, bounded. */
    default java.util.Optional<String> unavailable() {
        return java.util.Optional.empty();
    }
}
