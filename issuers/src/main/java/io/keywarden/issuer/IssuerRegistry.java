package io.keywarden.issuer;

import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.yaml.Problem;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The daemon's issuer instances by name, and which one serves a key: the key's {@code issuer},
 * or the only instance when the config has one. {@link #check} is the policy's validation against
 * the configured instances (at start, on every reload and in {@code policy check --config}).
 */
public final class IssuerRegistry {
    /** Where the node publishes the public keys its issuers sign client assertions with ({@link Issuer#publicKeys}). */
    public static final String CLIENT_JWKS_PATH = "/.well-known/keywarden-client-jwks.json";
    private final Map<String, Issuer> byName;
    private final Map<String, IssuerSpec> specs;

    public IssuerRegistry(Map<String, IssuerSpec> specs, Map<String, Issuer> issuers) {
        this.specs = Map.copyOf(specs);
        this.byName = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(issuers));
    }

    /** One issuer serving every key (tests, benchmarks). */
    public static IssuerRegistry single(Issuer issuer) {
        return new IssuerRegistry(Map.of(), Map.of(issuer.name(), issuer));
    }

    /** The instance that serves {@code key}. */
    public Issuer forKey(KeySpec key) throws IssuerException {
        String name = instanceOf(key, byName.keySet()).orElseThrow(() -> new IssuerException("key " + key.name()
                + " names no issuer and the config has " + byName.size(), IssuerException.Kind.CONFIG));
        Issuer i = byName.get(name);
        if (i == null) {
            throw new IssuerException("key " + key.name() + " names issuer '" + name + "', which the config does not have",
                    IssuerException.Kind.CONFIG);
        }
        return i;
    }

    /** The instance named {@code name}: the one that issued a lease stamped with it. */
    public Optional<Issuer> named(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    public Collection<Issuer> all() {
        return byName.values();
    }

    /** The public JWKS of every instance's client assertion keys, each kid once; empty when none signs any. */
    public Optional<String> clientJwks() {
        Map<String, com.nimbusds.jose.jwk.JWK> keys = new LinkedHashMap<>();
        for (Issuer i : byName.values()) {
            for (com.nimbusds.jose.jwk.JWK k : i.publicKeys()) {
                keys.putIfAbsent(k.getKeyID(), k.toPublicJWK());
            }
        }
        return keys.isEmpty() ? Optional.empty()
                : Optional.of(new com.nimbusds.jose.jwk.JWKSet(new ArrayList<>(keys.values())).toString(true));
    }

    public Optional<IssuerSpec> spec(String name) {
        return Optional.ofNullable(specs.get(name));
    }

    private static Optional<String> instanceOf(KeySpec key, Collection<String> names) {
        if (key.issuer().isPresent()) {
            return key.issuer();
        }
        return names.size() == 1 ? Optional.of(names.iterator().next()) : Optional.empty();
    }

    /**
     * What makes {@code policy} unusable with these instances: a key naming an unknown instance, a
     * key naming none when there are several, or parameters its instance's type does not take.
     */
    public static List<Problem> check(Map<String, IssuerSpec> instances, Policy policy) {
        List<Problem> out = new ArrayList<>();
        for (KeySpec k : policy.keys().values()) {
            Optional<String> name = instanceOf(k, instances.keySet());
            if (name.isEmpty()) {
                out.add(new Problem(k.declaredAt(), "keys." + k.name() + ": name its issuer ('issuer:', one of "
                        + String.join(", ", instances.keySet()) + "): the config has " + instances.size()));
                continue;
            }
            IssuerSpec spec = instances.get(name.get());
            if (spec == null) {
                out.add(new Problem(k.declaredAt(), "keys." + k.name() + ".issuer: '" + name.get()
                        + "' is not an issuer instance of the config (" + String.join(", ", instances.keySet()) + ")"));
                continue;
            }
            spec.keyProblems(k).forEach(m -> out.add(new Problem(k.declaredAt(), m)));
        }
        return out;
    }
}
