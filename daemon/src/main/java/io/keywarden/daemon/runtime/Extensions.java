package io.keywarden.daemon.runtime;

import io.keywarden.daemon.csi.CsiSettings;
import io.keywarden.daemon.fleet.FleetSettings;
import io.keywarden.daemon.gateway.GatewaySettings;
import io.keywarden.daemon.guard.UsageApiSettings;
import io.keywarden.daemon.hook.HookSettings;
import io.keywarden.daemon.ops.MetricsExport;
import java.util.Optional;

/**
 * The optional parts around the core (issue 16), each with its component's own settings: the
 * gateway, the usage-API sensor, the policy hook, the metric exports, the CSI plugin and the
 * fleet. {@link #NONE}: none of them.
 */
public record Extensions(Optional<GatewaySettings> gateway, Optional<UsageApiSettings> usage,
                         Optional<HookSettings> policyHook, MetricsExport metrics, Optional<CsiSettings> csi,
                         Optional<FleetSettings> fleet) {
    public static final Extensions NONE = new Extensions(Optional.empty(), Optional.empty(), Optional.empty(),
            MetricsExport.NONE, Optional.empty(), Optional.empty());

    public Extensions(Optional<GatewaySettings> gateway, Optional<UsageApiSettings> usage,
                      Optional<HookSettings> policyHook, MetricsExport metrics) {
        this(gateway, usage, policyHook, metrics, Optional.empty(), Optional.empty());
    }

    public Extensions withCsi(Optional<CsiSettings> c) {
        return new Extensions(gateway, usage, policyHook, metrics, c, fleet);
    }
}
