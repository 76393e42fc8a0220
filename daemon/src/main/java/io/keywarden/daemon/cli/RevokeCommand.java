package io.keywarden.daemon.cli;

import io.keywarden.daemon.NotYetAvailable;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "revoke", description = "Kill switch: revoke a workload's keys now; a fresh key on next open unless --block.")
final class RevokeCommand implements Callable<Integer> {
    @Mixin
    AdminSocketOption admin;

    @Option(names = "--spiffe-id", required = true, paramLabel = "ID")
    String spiffeId;

    @Option(names = "--key", paramLabel = "NAME")
    String key;

    @Option(names = "--block", description = "Refuse new keys to this workload until unblocked.")
    boolean block;

    @Option(names = "--reason", paramLabel = "TEXT")
    String reason;

    @Override
    public Integer call() {
        throw new NotYetAvailable("revoke (the admin API)");
    }
}
