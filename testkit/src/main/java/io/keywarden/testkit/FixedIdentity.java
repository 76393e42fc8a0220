package io.keywarden.testkit;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.policy.Workload;
import java.time.Instant;

/** An identity provider for issuer tests: every workload gets the same opaque SVID, valid until {@code end}. */
public final class FixedIdentity implements IdentityProvider {
    private final String token;
    private final Instant end;

    public FixedIdentity(String token, Instant end) {
        this.token = token;
        this.end = end;
    }

    @Override
    public String name() {
        return "test";
    }

    @Override
    public JwtSvid fetchJwtSvid(Workload w, ProcessInfo process, String audience) {
        return new JwtSvid(w.spiffeId(), token, Instant.now(), end);
    }

    @Override
    public String defaultAudience() {
        return "vault";
    }

    @Override
    public Attestation attest(int tid, int uid, int gid) {
        throw new UnsupportedOperationException("issuer tests attest nobody");
    }

    @Override
    public boolean isAlive(ProcessInfo process) {
        return true;
    }
}
