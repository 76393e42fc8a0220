package io.keywarden.attestation.dev;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.attestation.SelectorAttestor;
import io.keywarden.policy.SpiffeId;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** The dev identity provider: the policy's selectors decide who a process is; a local key signs. */
public final class DevIdentityProvider implements IdentityProvider {
    private final SelectorAttestor selectors;
    private final JwtSigner signer;
    private final Clock clock;
    /** Fresh JWT-SVIDs by [SPIFFE ID, audience]. */
    private final Map<java.util.List<Object>, JwtSvid> svids = new ConcurrentHashMap<>();

    public DevIdentityProvider(SelectorAttestor selectors, JwtSigner signer, Clock clock) {
        this.selectors = selectors;
        this.signer = signer;
        this.clock = clock;
    }

    @Override
    public String name() {
        return "dev";
    }

    public JwtSigner signer() {
        return signer;
    }

    @Override
    public Attestation attest(int tid, int uid, int gid) {
        return selectors.attest(tid, uid, gid);
    }

    @Override
    public boolean isAlive(ProcessInfo process) {
        return selectors.isAlive(process);
    }

    /** Signed once per SPIFFE ID and reused until half its life, as the SPIRE agent caches them. */
    @Override
    public JwtSvid fetchFreshJwtSvid(Workload workload, ProcessInfo process, String audience) {
        return signer.sign(workload.spiffeId(), java.util.List.of(audience));
    }

    @Override
    public String defaultAudience() {
        return signer.audience();
    }

    @Override
    public JwtSvid fetchJwtSvid(Workload workload, ProcessInfo process, String audience) {
        java.util.List<Object> k = java.util.List.of(workload.spiffeId(), audience);
        JwtSvid cached = svids.get(k);
        if (cached != null && cached.isFreshAt(clock.instant())) {
            return cached;
        }
        JwtSvid fresh = signer.sign(workload.spiffeId(), java.util.List.of(audience));
        svids.put(k, fresh);
        return fresh;
    }
}
