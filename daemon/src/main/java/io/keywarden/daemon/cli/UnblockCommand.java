package io.keywarden.daemon.cli;

import io.keywarden.daemon.NotYetAvailable;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "unblock", description = "Lift a block set by revoke --block.")
final class UnblockCommand implements Callable<Integer> {
    @Mixin
    AdminSocketOption admin;

    @Option(names = "--spiffe-id", required = true, paramLabel = "ID")
    String spiffeId;

    @Override
    public Integer call() {
        throw new NotYetAvailable("unblock (the admin API)");
    }
}
