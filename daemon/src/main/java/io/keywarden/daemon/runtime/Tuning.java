package io.keywarden.daemon.runtime;

import java.time.Duration;

/**
 * The daemon's tunables ({@code tuning:}), every one with a default that suits a node of a few
 * hundred workloads. {@code fuseWorkers} 0 means two per CPU (at least 4). {@code fuseIoUring}:
 * serve KeyFS over FUSE io_uring where the kernel offers it ({@code enable_uring}), which rules out
 * takeovers ({@code false}: /dev/fuse reads always). {@code gatewayEventLoops} 0 means one per CPU:
 * the gateway's connections are spread over them (a connection stays on one).
 */
public record Tuning(int fuseWorkers, int issuerThreads, int attestThreads, Duration openTimeout,
                     Duration readinessInterval, Duration policyPollInterval, Duration spireTimeout,
                     boolean fuseIoUring, int gatewayEventLoops) {
    public static final Tuning DEFAULT = new Tuning(0, 8, 4, Duration.ofSeconds(10), Duration.ofSeconds(10),
            Duration.ofSeconds(2), Duration.ofSeconds(5), true, 0);

    public Tuning withOpenTimeout(Duration d) {
        return new Tuning(fuseWorkers, issuerThreads, attestThreads, d, readinessInterval, policyPollInterval,
                spireTimeout, fuseIoUring, gatewayEventLoops);
    }

    /** The gateway's event loops: {@code gatewayEventLoops}, or one per CPU when it is 0 (the default). */
    public int gatewayLoops() {
        return gatewayEventLoops > 0 ? gatewayEventLoops : Math.max(1, Runtime.getRuntime().availableProcessors());
    }
}
