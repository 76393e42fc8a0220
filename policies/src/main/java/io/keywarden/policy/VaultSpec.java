package io.keywarden.policy;

import java.time.Duration;
import java.util.Optional;

/** How a key is obtained from Vault/OpenBao; role and path are {@link Templates} ({@code {workload}}, its params). */
public record VaultSpec(String role, String path, String field, Optional<Duration> ttl) {
    public static final String WORKLOAD = Templates.WORKLOAD;
    public static final String DEFAULT_FIELD = "api_key";

    public String roleFor(Workload workload) {
        return Templates.expand(role, workload);
    }

    public String pathFor(Workload workload) {
        return Templates.expand(path, workload);
    }
}
