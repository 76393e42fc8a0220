package io.keywarden.daemon.runtime;

import io.keywarden.attestation.IdentityProvider;
import io.keywarden.daemon.InputProblem;
import io.keywarden.daemon.config.IssuerSpec;
import io.keywarden.daemon.issuer.DevIssuer;
import io.keywarden.daemon.issuer.Issuer;
import io.keywarden.daemon.issuer.IssuerException;
import io.keywarden.daemon.issuer.IssuerRegistry;
import io.keywarden.daemon.issuer.MeteredIssuer;
import io.keywarden.daemon.issuer.VaultIssuer;
import io.keywarden.daemon.issuer.federation.ClientKeys;
import io.keywarden.daemon.ops.Metrics;
import java.time.Clock;
import java.util.LinkedHashMap;
import java.util.Map;

/** Builds the issuer instances of the config, each metered under its instance name. */
final class IssuerFactory {
    private IssuerFactory() {
    }

    /** {@code hook} (may be null): the policy hook asked before every issuance. */
    static IssuerRegistry build(Map<String, IssuerSpec> specs, IdentityProvider identity, Clock clock, Metrics metrics,
                                Map<String, ClientKeys> clientKeys,
                                io.keywarden.daemon.hook.PolicyHook hook, java.time.Duration hookTimeout) {
        Map<String, Issuer> out = new LinkedHashMap<>();
        for (IssuerSpec spec : specs.values()) {
            Issuer i = new MeteredIssuer(create(spec, identity, clock, clientKeys.get(spec.name())), metrics);
            out.put(spec.name(), hook == null ? i : new io.keywarden.daemon.hook.HookedIssuer(i, hook, hookTimeout));
        }
        return new IssuerRegistry(specs, out);
    }

    /** The client assertion keys of the instances that sign with one (private_key_jwt), by instance name. */
    static Map<String, ClientKeys> clientKeys(Map<String, IssuerSpec> specs, Clock clock) {
        Map<String, ClientKeys> out = new LinkedHashMap<>();
        for (IssuerSpec spec : specs.values()) {
            if (spec instanceof IssuerSpec.OktaClientCredentials o) {
                try {
                    out.put(o.name(), ClientKeys.load(o.signingKeyFiles(), clock));
                } catch (java.io.IOException e) {
                    throw new InputProblem("issuers." + o.name() + ".signingKeyFile: " + e.getMessage());
                }
            }
        }
        return out;
    }

    private static Issuer create(IssuerSpec spec, IdentityProvider identity, Clock clock, ClientKeys clientKeys) {
        if (spec instanceof IssuerSpec.OktaClientCredentials o) {
            return new io.keywarden.daemon.issuer.federation.OktaClientCredentialsIssuer(o, clientKeys, clock);
        }
        if (spec instanceof IssuerSpec.Vault v) {
            try {
                return new VaultIssuer(v, identity, clock);
            } catch (IssuerException e) {
                throw new InputProblem("issuers." + v.name() + ": " + e.getMessage());
            }
        }
        if (spec instanceof IssuerSpec.OpenAiFederation o) {
            return new io.keywarden.daemon.issuer.federation.OpenAiFederationIssuer(o, identity, clock);
        }
        if (spec instanceof IssuerSpec.AnthropicFederation a) {
            return new io.keywarden.daemon.issuer.federation.AnthropicFederationIssuer(a, identity, clock);
        }
        if (spec instanceof IssuerSpec.GcpSts g) {
            return new io.keywarden.daemon.issuer.federation.GcpStsIssuer(g, identity, clock);
        }
        if (spec instanceof IssuerSpec.AzureEntra a) {
            // Entra verifies RS256 only: the dev identity provider signs this audience with RSA.
            if (identity instanceof io.keywarden.attestation.dev.DevIdentityProvider dev) {
                dev.signer().useRs256For(a.audience());
            }
            return new io.keywarden.daemon.issuer.federation.AzureEntraIssuer(a, identity, clock);
        }
        if (spec instanceof IssuerSpec.OpenRouterFederation o) {
            return new io.keywarden.daemon.issuer.federation.OpenRouterFederationIssuer(o, identity, clock);
        }
        if (spec instanceof IssuerSpec.AwsSts a) {
            return new io.keywarden.daemon.issuer.federation.AwsStsIssuer(a, identity, clock);
        }
        if (spec instanceof IssuerSpec.OpenRouterKeys o) {
            try {
                return new io.keywarden.daemon.issuer.federation.OpenRouterKeysIssuer(o, clock);
            } catch (IssuerException e) {
                throw new InputProblem(e.getMessage());
            }
        }
        IssuerSpec.Dev d = (IssuerSpec.Dev) spec;
        return new DevIssuer(d.name(), d.ttl(), clock);
    }
}
