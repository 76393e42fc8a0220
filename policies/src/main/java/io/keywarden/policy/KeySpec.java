package io.keywarden.policy;

import io.keywarden.policy.yaml.Location;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * One key of the policy: a directory under the mount. {@code issuer} names the config's issuer
 * instance (empty: the only one); {@code params} are that issuer type's per-key parameters, as
 * templates ({@link Templates}); {@code vault} is the params block of vault-type keys.
 */
public record KeySpec(String name, Optional<String> issuer, Map<String, String> params, Optional<VaultSpec> vault,
                      double refreshAt, Duration grace, Location declaredAt) {
    public static final double DEFAULT_REFRESH_AT = 0.67;
    public static final Duration DEFAULT_GRACE = Duration.ofSeconds(60);

    public KeySpec {
        params = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(params));
    }

    public KeySpec(String name, Optional<VaultSpec> vault, double refreshAt, Duration grace, Location declaredAt) {
        this(name, Optional.empty(), Map.of(), vault, refreshAt, grace, declaredAt);
    }

    /** {@code params} expanded for {@code workload}. */
    public Map<String, String> paramsFor(Workload workload) {
        Map<String, String> out = new java.util.LinkedHashMap<>();
        params.forEach((k, v) -> out.put(k, Templates.expand(v, workload)));
        return out;
    }
}
