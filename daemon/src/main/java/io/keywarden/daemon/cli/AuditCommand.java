package io.keywarden.daemon.cli;

import io.keywarden.daemon.NotYetAvailable;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "audit", description = "Read and verify the audit ledger.",
        subcommands = {AuditCommand.Verify.class, AuditCommand.Show.class})
final class AuditCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required (verify, show)");
    }

    @Command(name = "verify", description = "Check the hash chain: OK: N records (exit 0) or BROKEN at record N (exit 1).")
    static final class Verify implements Callable<Integer> {
        @Parameters(paramLabel = "FILE")
        Path file;

        @Override
        public Integer call() {
            throw new NotYetAvailable("audit verify");
        }
    }

    @Command(name = "show", description = "An auditor's table (or JSON lines) of the ledger.")
    static final class Show implements Callable<Integer> {
        @Parameters(paramLabel = "FILE")
        Path file;

        @Option(names = "--spiffe-id", paramLabel = "ID")
        String spiffeId;

        @Option(names = "--key", paramLabel = "NAME")
        String key;

        @Option(names = "--event", paramLabel = "TYPE")
        String event;

        @Option(names = "--since", paramLabel = "TIME|DUR")
        String since;

        @Option(names = "--json")
        boolean json;

        @Override
        public Integer call() {
            throw new NotYetAvailable("audit show");
        }
    }
}
