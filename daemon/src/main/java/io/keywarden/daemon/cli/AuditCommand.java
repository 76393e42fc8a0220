package io.keywarden.daemon.cli;

import io.keywarden.daemon.UserError;
import io.keywarden.daemon.audit.AuditQuery;
import io.keywarden.daemon.audit.LedgerVerifier;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
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

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            LedgerVerifier.Result r;
            try {
                r = LedgerVerifier.verify(file);
            } catch (NoSuchFileException e) {
                throw new UserError("keywarden audit verify: " + file + ": no such file");
            }
            spec.commandLine().getOut().println(r.describe());
            return r.ok() ? 0 : 1;
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

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            AuditQuery q;
            try {
                q = AuditQuery.of(spiffeId, key, event, since, java.time.Clock.systemUTC());
            } catch (IllegalArgumentException e) {
                throw new UserError("keywarden audit show: " + e.getMessage());
            }
            try {
                q.print(file, json, spec.commandLine().getOut());
            } catch (NoSuchFileException e) {
                throw new UserError("keywarden audit show: " + file + ": no such file");
            }
            return 0;
        }
    }
}
