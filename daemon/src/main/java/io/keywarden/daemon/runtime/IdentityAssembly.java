package io.keywarden.daemon.runtime;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.SelectorAttestor;
import io.keywarden.attestation.dev.DevIdentityProvider;
import io.keywarden.attestation.dev.JwtSigner;
import io.keywarden.attestation.spire.DelegatedIdentityClient;
import io.keywarden.attestation.spire.SpireIdentityProvider;
import io.keywarden.policy.Policy;
import java.time.Clock;
import java.util.List;
import java.util.function.Supplier;

/**
 * The workload identity provider: SPIRE's Delegated Identity API (attestation by PID, JWT-SVIDs),
 * or the dev provider (selectors matched from /proc, JWTs signed by a key of its own, kept in
 * {@code identity.devSigningKey} when set).
 */
final class IdentityAssembly {
    private IdentityAssembly() {
    }

    static IdentityProvider start(Spec s, Clock clock, Supplier<Policy> policy, Components components) {
        ProcAttestor proc = ProcAttestor.system();
        IdentityProvider identity;
        AutoCloseable stop = () -> { };
        if (s.identity().provider() == IdentitySettings.Provider.SPIRE) {
            DelegatedIdentityClient client = new DelegatedIdentityClient(s.identity().spireAdminSocket(),
                    s.tuning().spireTimeout());
            stop = client;
            identity = new SpireIdentityProvider(proc, client, policy, s.identity().audience(), clock);
        } else {
            String iss = s.identity().devIssuer().orElse("http://" + s.listen());
            List<String> audiences = List.of(s.identity().audience());
            JwtSigner signer = s.identity().devSigningKey()
                    .map(f -> new JwtSigner(iss, audiences, clock, DevSigningKey.loadOrCreate(f)))
                    .orElseGet(() -> new JwtSigner(iss, audiences, clock));
            identity = new DevIdentityProvider(new SelectorAttestor(proc, policy), signer, clock);
        }
        components.add(Component.of("identity", stop, identity::unavailable));
        return identity;
    }
}
