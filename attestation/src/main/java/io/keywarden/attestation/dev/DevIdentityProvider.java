package io.keywarden.attestation.dev;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.attestation.SelectorAttestor;
import io.keywarden.policy.Workload;

/** The dev identity provider: the policy's selectors decide who a process is; a local key signs. */
public final class DevIdentityProvider implements IdentityProvider {
    private final SelectorAttestor selectors;
    private final JwtSigner signer;

    public DevIdentityProvider(SelectorAttestor selectors, JwtSigner signer) {
        this.selectors = selectors;
        this.signer = signer;
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

    @Override
    public JwtSvid fetchJwtSvid(Workload workload, ProcessInfo process) {
        return signer.sign(workload.spiffeId());
    }
}
