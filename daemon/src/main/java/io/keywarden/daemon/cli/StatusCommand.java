package io.keywarden.daemon.cli;

import io.keywarden.daemon.NotYetAvailable;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(name = "status", description = "Identities, keys, leases, expiry, last refresh, errors; never secrets.")
final class StatusCommand implements Callable<Integer> {
    @Mixin
    AdminSocketOption admin;

    @Override
    public Integer call() {
        throw new NotYetAvailable("status (the admin API)");
    }
}
