package io.keywarden.policy;

import java.time.Duration;
import java.util.Optional;

/** How a key is obtained from Vault/OpenBao; {@code {workload}} in role and path is the workload's name. */
public record VaultSpec(String role, String path, String field, Optional<Duration> ttl) {
    public static final String WORKLOAD = "{workload}";
    public static final String DEFAULT_FIELD = "api_key";

    public String roleFor(String workload) {
        return role.replace(WORKLOAD, workload);
    }

    public String pathFor(String workload) {
        return path.replace(WORKLOAD, workload);
    }
}
