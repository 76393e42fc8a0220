package io.keywarden.daemon.cli;

import picocli.CommandLine.Option;

/** {@code --takeover} and {@code --after-handover}: the upgrade options {@code run} and {@code dev} share. */
final class UpgradeOptions {
    @Option(names = "--takeover", description = "Take the mount and the leases over from the daemon running on the"
            + " handover socket (an upgrade: nothing is unmounted or revoked); start normally if none answers.")
    boolean takeover;

    @Option(names = "--after-handover", paramLabel = "exit|idle", defaultValue = "exit",
            description = "Once this daemon handed over to a successor: exit (default), or idle until stopped, answering"
                    + " /healthz (for a Kubernetes pod, whose container would otherwise be restarted).")
    Serving.AfterHandover afterHandover;
}
