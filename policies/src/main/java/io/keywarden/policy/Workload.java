package io.keywarden.policy;

import io.keywarden.policy.yaml.Location;
import java.util.List;

/** A workload: who it is (SPIFFE ID), how the dev provider recognises it, and which keys it gets. */
public record Workload(String name, SpiffeId spiffeId, List<Selector> selectors, List<String> keys,
                       Readers readers, Location declaredAt) {

    public Workload {
        selectors = List.copyOf(selectors);
        keys = List.copyOf(keys);
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
