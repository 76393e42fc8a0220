package io.keywarden.policy;

import io.keywarden.policy.yaml.Location;
import java.time.Duration;
import java.util.Optional;

/** One key of the policy: a directory under the mount. */
public record KeySpec(String name, Optional<VaultSpec> vault, double refreshAt, Duration grace, Location declaredAt) {
    public static final double DEFAULT_REFRESH_AT = 0.67;
    public static final Duration DEFAULT_GRACE = Duration.ofSeconds(60);
}
