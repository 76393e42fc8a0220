package io.keywarden.daemon.runtime;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.daemon.InputProblem;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerContext;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerMetrics;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerTypes;
import io.keywarden.issuer.MeteredIssuer;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.Map;

/** Builds the issuer instances of the config, each by its type, metered under its instance name. */
final class IssuerFactory {
    private IssuerFactory() {
    }

    /** {@code hook} (may be null): the policy hook asked before every issuance. */
    static IssuerRegistry build(Map<String, IssuerSpec> specs, IdentityProvider identity, Clock clock, IssuerMetrics metrics,
                                io.keywarden.daemon.hook.PolicyHook hook, java.time.Duration hookTimeout) {
        IssuerContext context = new IssuerContext(identity, clock);
        Map<String, Issuer> out = new LinkedHashMap<>();
        for (IssuerSpec spec : specs.values()) {
            Issuer made;
            try {
                made = IssuerTypes.create(spec, context);
            } catch (IssuerException e) {
                throw new InputProblem(e.getMessage().startsWith("issuers.") ? e.getMessage()
                        : "issuers." + spec.name() + ": " + e.getMessage(), e);
            }
            Issuer i = new MeteredIssuer(made, metrics);
            out.put(spec.name(), hook == null ? i : new io.keywarden.daemon.hook.HookedIssuer(i, hook, hookTimeout));
        }
        return new IssuerRegistry(specs, out);
    }
}
