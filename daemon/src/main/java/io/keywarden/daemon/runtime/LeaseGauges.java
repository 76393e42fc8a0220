package io.keywarden.daemon.runtime;

import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.daemon.lifecycle.Unrevoked;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * The lease core's gauges: per key (live leases, seconds to the next expiry), per workload and
 * key, and the unrevoked count. Keys and workloads a reloaded policy adds get theirs then
 * (registration is once per name).
 */
final class LeaseGauges {
    private final Metrics metrics;
    private final LeaseManager leases;
    private final IssuerRegistry issuers;
    private final Clock clock;
    /** Live leases by "workload NUL key", counted once per scrape (at most once a second), not once per gauge. */
    private volatile Map.Entry<Long, Map<String, Long>> leaseCounts = Map.entry(0L, Map.of());

    LeaseGauges(Metrics metrics, LeaseManager leases, IssuerRegistry issuers, Clock clock) {
        this.metrics = metrics;
        this.leases = leases;
        this.issuers = issuers;
        this.clock = clock;
        metrics.unrevokedGauge(leases.unrevoked(), Unrevoked::count);
    }

    /** The gauges of every key and workload of {@code p} (at start and on every reload). */
    void register(Policy p) {
        for (KeySpec k : p.keys().values()) {
            metrics.registerKey(k.name(), issuerNameOf(k));
        }
        for (String key : p.keys().keySet()) {
            metrics.leaseGauges(key, leases, m -> m.view().stream().filter(v -> v.key().equals(key) && v.leaseId() != null)
                            .count(),
                    m -> m.view().stream().filter(v -> v.key().equals(key) && v.expiresAt() != null)
                            .mapToDouble(v -> Duration.between(clock.instant(), v.expiresAt()).toMillis() / 1000.0)
                            .min().orElse(Double.NaN));
        }
        for (Workload w : p.workloads()) {
            for (String key : w.keys()) {
                String id = w.name() + "\u0000" + key;
                metrics.workloadLeaseGauge(w.name(), key, leases, m -> liveLeases(m).getOrDefault(id, 0L));
            }
        }
    }

    private Map<String, Long> liveLeases(LeaseManager lm) {
        Map.Entry<Long, Map<String, Long>> c = leaseCounts;
        long now = System.nanoTime();
        if (now - c.getKey() > 1_000_000_000L || c.getValue().isEmpty() && c.getKey() == 0L) {
            Map<String, Long> counts = new HashMap<>();
            for (LeaseManager.LeaseView v : lm.view()) {
                if (v.leaseId() != null) {
                    counts.merge(v.workload() + "\u0000" + v.key(), 1L, Long::sum);
                }
            }
            c = Map.entry(now, counts);
            leaseCounts = c;
        }
        return c.getValue();
    }

    /** The instance that serves {@code key}, for metric labels ("" when the policy names none that exists). */
    private String issuerNameOf(KeySpec key) {
        try {
            return issuers.forKey(key).name();
        } catch (IssuerException e) {
            return "";
        }
    }
}
