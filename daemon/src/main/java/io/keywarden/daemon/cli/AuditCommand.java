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

    @Command(name = "verify", description = "Check the hash chain and its end: OK: N records; head SEQ:HASH (exit 0), "
            + "or BROKEN at record N / TRUNCATED after record N (exit 1). The end is held against FILE.head (written by"
            + " the daemon) or --expect-head.")
    static final class Verify implements Callable<Integer> {
        @Parameters(paramLabel = "FILE")
        Path file;

        @Option(names = "--expect-head", paramLabel = "SEQ:HASH",
                description = "The head an auditor recorded elsewhere (from an earlier verify).")
        String expectHead;

        @Option(names = "--merged", description = "FILE holds several nodes' records in any order (a log pipeline's"
                + " export): verify each node's chain on its own and report each node.")
        boolean merged;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            if (merged) {
                if (expectHead != null) {
                    throw new UserError("keywarden audit verify: --expect-head names one chain; not with --merged");
                }
                java.util.Map<String, io.keywarden.daemon.audit.MergedLedger.NodeResult> all;
                try {
                    all = io.keywarden.daemon.audit.MergedLedger.verify(file);
                } catch (NoSuchFileException e) {
                    throw new UserError("keywarden audit verify: " + file + ": no such file");
                }
                if (all.isEmpty()) {
                    spec.commandLine().getOut().println("no records");
                    return 1;
                }
                boolean ok = true;
                for (var n : all.values()) {
                    spec.commandLine().getOut().println(n.describe());
                    ok &= n.ok();
                }
                return ok ? 0 : 1;
            }
            LedgerVerifier.Result r;
            LedgerVerifier.Head head = null;
            try {
                if (expectHead != null) {
                    head = LedgerVerifier.Head.parse(expectHead);
                } else if (java.nio.file.Files.exists(io.keywarden.daemon.audit.Ledger.headFileOf(file))) {
                    head = LedgerVerifier.Head.parse(java.nio.file.Files.readString(
                            io.keywarden.daemon.audit.Ledger.headFileOf(file)));
                }
            } catch (IllegalArgumentException e) {
                throw new UserError("keywarden audit verify: " + e.getMessage());
            }
            try {
                r = LedgerVerifier.verify(file, head);
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

        @Option(names = "--until", paramLabel = "TIME|DUR", description = "Records before this time (or this long ago).")
        String until;

        @Option(names = "--workload", paramLabel = "NAME")
        String workload;

        @Option(names = "--fingerprint", paramLabel = "sha256:HEX")
        String fingerprint;

        @Option(names = "--pid", paramLabel = "PID")
        Long pid;

        @Option(names = "--json")
        boolean json;

        @Option(names = "--merged", description = "FILE holds several nodes' records in any order: each node's chain is"
                + " verified, then the records are shown in time order with their node.")
        boolean merged;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            AuditQuery q;
            try {
                q = AuditQuery.of(spiffeId, key, event, since, until, workload, fingerprint, pid, java.time.Clock.systemUTC());
            } catch (IllegalArgumentException e) {
                throw new UserError("keywarden audit show: " + e.getMessage());
            }
            try {
                if (merged) {
                    q.printMerged(file, json, spec.commandLine().getOut());
                } else {
                    q.print(file, json, spec.commandLine().getOut());
                }
            } catch (NoSuchFileException e) {
                throw new UserError("keywarden audit show: " + file + ": no such file");
            } catch (IllegalArgumentException e) {
                // The check failed: the ledger does not verify, so nothing of it is shown.
                spec.commandLine().getErr().println("keywarden audit show: " + e.getMessage());
                return 1;
            }
            return 0;
        }
    }
}
