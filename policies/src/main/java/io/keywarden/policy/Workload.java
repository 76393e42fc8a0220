package io.keywarden.policy;

import io.keywarden.policy.yaml.Location;
import java.util.List;

/**
 * A workload: who it is (SPIFFE ID), how the dev provider recognises it, which keys it gets, and
 * {@code params}, a free string map its keys' parameters may refer to ({@code {workload.params.NAME}}),
 * and its spend and model {@code guard} ({@link Guard#NONE} when it has none).
 */
public record Workload(String name, SpiffeId spiffeId, List<Selector> selectors, List<String> keys,
                       Readers readers, java.util.Map<String, String> params, Guard guard, Location declaredAt) {

    public Workload {
        selectors = List.copyOf(selectors);
        keys = List.copyOf(keys);
        params = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(params));
    }

    public Workload(String name, SpiffeId spiffeId, List<Selector> selectors, List<String> keys, Readers readers,
                    Location declaredAt) {
        this(name, spiffeId, selectors, keys, readers, java.util.Map.of(), Guard.NONE, declaredAt);
    }

    public Workload(String name, SpiffeId spiffeId, List<Selector> selectors, List<String> keys, Readers readers,
                    java.util.Map<String, String> params, Location declaredAt) {
        this(name, spiffeId, selectors, keys, readers, params, Guard.NONE, declaredAt);
    }

    /**
     * Whether a traced process must be refused this workload: when it is told apart from other
     * processes of its uid and gid (a path, digest, pod or container selector, or readers naming
     * executables). A workload of a uid and gid only gains nothing from it: whoever may trace its
     * process (its uid and gid, or root) may open the key itself.
     */
    public boolean refusesTraced() {
        // Indexed: asked on every open, it allocates no iterator (interpreted or compiled alike).
        for (int i = 0; i < selectors.size(); i++) {
            Selector s = selectors.get(i);
            if (s.kind() != Selector.Kind.UNIX_UID && s.kind() != Selector.Kind.UNIX_GID) {
                return true;
            }
        }
        return !readers.exes().isEmpty() || !readers.sha256s().isEmpty();
    }

    /** True when every selector holds. A workload with no selectors matches no process. */
    public boolean matches(ProcessFacts p) {
        if (selectors.isEmpty()) {
            return false;
        }
        // Cheap selectors first, so a digest is computed only when everything else held.
        for (Selector s : selectors) {
            if (s.kind() != Selector.Kind.UNIX_SHA256 && !s.matches(p)) {
                return false;
            }
        }
        for (Selector s : selectors) {
            if (s.kind() == Selector.Kind.UNIX_SHA256 && !s.matches(p)) {
                return false;
            }
        }
        return true;
    }

    public boolean grants(String key) {
        return keys.contains(key);
    }
}
