package io.keywarden.daemon.runtime;

import io.keywarden.daemon.audit.LedgerEvent;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.policy.Policy;
import io.keywarden.policy.yaml.Problem;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The policy file watched ({@code tuning.policyPollInterval}): a new policy that loads and fits the
 * configured issuers is recorded ({@code policy.loaded}) and handed to every part that follows the
 * policy, in the order they registered (gauges, guard meters, blocks, tmpfs's eager issuance); one
 * that does not is recorded ({@code policy.rejected}) and the one in force stays.
 */
final class PolicyReloads {
    private final List<Consumer<Policy>> followers = new ArrayList<>();

    /** {@code follower} gets every policy loaded from now on. */
    PolicyReloads follow(Consumer<Policy> follower) {
        followers.add(follower);
        return this;
    }

    /** Starts watching {@code file}; the returned watcher is the policy in force from now on. */
    PolicyWatcher start(Core core, Path file) {
        PolicyWatcher watcher = new PolicyWatcher(file, core.spec().policy(),
                p -> IssuerRegistry.check(core.spec().issuers(), p), new PolicyWatcher.Listener() {
                    @Override
                    public void loaded(Policy p) {
                        core.audit().record(LedgerEvent.POLICY_LOADED, Map.of("reason", summary(p)));
                        followers.forEach(f -> f.accept(p));
                    }

                    @Override
                    public void rejected(List<Problem> problems) {
                        core.audit().record(LedgerEvent.POLICY_REJECTED, Map.of("reason", String.join("; ",
                                problems.stream().map(Problem::format).toList())));
                    }
                });
        core.components().add("policy watcher", watcher.start(core.scheduler(), core.clock(),
                core.spec().tuning().policyPollInterval()));
        return watcher;
    }

    /** "FILE: N keys, M workloads", as {@code policy.loaded} says it. */
    static String summary(Policy p) {
        return p.source() + ": " + p.keys().size() + " keys, " + p.workloads().size() + " workloads";
    }
}
