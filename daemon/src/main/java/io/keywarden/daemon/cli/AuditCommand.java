package io.keywarden.daemon.cli;

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
        subcommands = {AuditCommand.Verify.class, AuditCommand.Show.class, AuditCommand.Report.class})
final class AuditCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required (verify, show, report)");
    }

    @Command(name = "verify", description = "Check the hash chain and its end: OK: N records; head SEQ:HASH (exit 0), "
            + "or BROKEN at record N / TRUNCATED after record N (exit 1). The end is held against FILE.head (written by"
            + " the daemon) or --expect-head.")
    static final class Verify implements Callable<Integer> {
        @Parameters(paramLabel = "FILE", description = "The ledger (its rotated segments FILE.1, FILE.2… are read too).")
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
            LedgerVerifier.Head head = null;
            try {
                if (expectHead != null) {
                    head = LedgerVerifier.Head.parse(expectHead);
                } else if (java.nio.file.Files.exists(io.keywarden.daemon.audit.LedgerFiles.headFileOf(file))) {
                    head = LedgerVerifier.Head.parse(java.nio.file.Files.readString(
                            io.keywarden.daemon.audit.LedgerFiles.headFileOf(file)));
                }
            } catch (IllegalArgumentException e) {
                throw new UserError("keywarden audit verify: " + e.getMessage());
            }
            LedgerVerifier.Head expected = head;
            boolean[] ok = {false};
            int code = reading("verify", file, spec, () -> {
                LedgerVerifier.Result v = LedgerVerifier.verify(file, expected);
                spec.commandLine().getOut().println(v.describe());
                ok[0] = v.ok();
            });
            return code != 0 ? code : ok[0] ? 0 : 1;
        }
    }

    @Command(name = "show", description = "An auditor's table (or JSON lines) of the ledger, once it verified: every"
            + " record with its workload, and each event's own fields in DETAIL (a breach's limit, usage tokens, a grouped"
            + " denial's uid, exe and repeats).",
            footer = {"%nExamples:", "  keywarden audit show /var/log/keywarden/audit.jsonl --workload research --since 24h",
                    "  keywarden audit show FILE --event access.denied --json | jq .",
                    "  keywarden audit show FILE --no-verify      # a ledger that does not verify, the break marked"})
    static final class Show implements Callable<Integer> {
        @Parameters(paramLabel = "FILE", arity = "0..1", description = "The ledger (its rotated segments are read too)."
                + " Without it: the running daemon's own ledger, verified and filtered by the daemon (--admin-socket).")
        Path file;

        @CommandLine.Mixin
        AdminSocketOption admin = new AdminSocketOption();

        @Option(names = "--spiffe-id", paramLabel = "ID", description = "Records of this SPIFFE ID only.")
        String spiffeId;

        @Option(names = "--key", paramLabel = "NAME", description = "Records of this key only.")
        String key;

        @Option(names = "--event", paramLabel = "TYPE", description = "Records of this event only (e.g. access.denied,"
                + " key.issued, guard.breach, admin.block).")
        String event;

        @CommandLine.Mixin
        Period period = new Period();

        @Option(names = "--workload", paramLabel = "NAME", description = "Records of this workload only (its accesses"
                + " included).")
        String workload;

        @Option(names = "--fingerprint", paramLabel = "sha256:HEX", description = "Records of this key fingerprint only.")
        String fingerprint;

        @Option(names = "--pid", paramLabel = "PID", description = "Records of this process id only.")
        Long pid;

        @Option(names = "--json", description = "One JSON record a line, as written (with its workload filled in).")
        boolean json;

        @Option(names = "--no-verify", description = "Show a ledger that does not verify, with the break marked, instead"
                + " of refusing it.")
        boolean noVerify;

        @Option(names = "--merged", description = "FILE holds several nodes' records in any order: each node's chain is"
                + " verified, then the records are shown in time order with their node.")
        boolean merged;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            AuditQuery q;
            try {
                q = AuditQuery.of(spiffeId, key, event, period.since, period.until, workload, fingerprint, pid,
                        java.time.Clock.systemUTC());
            } catch (IllegalArgumentException e) {
                throw new UserError("keywarden audit show: " + e.getMessage());
            }
            if (file == null) {
                return fromDaemon(q);
            }
            return reading("show", file, spec, () -> {
                if (merged) {
                    q.printMerged(file, json, spec.commandLine().getOut());
                } else {
                    q.print(file, json, !noVerify, spec.commandLine().getOut());
                }
            });
        }

        /** {@code audit show} without FILE: the daemon's ledger, through its admin socket. */
        private int fromDaemon(AuditQuery q) {
            if (merged || noVerify) {
                throw new UserError("keywarden audit show: " + (merged ? "--merged" : "--no-verify") + " reads a FILE;"
                        + " name one (the daemon shows its own ledger verified only)");
            }
            java.util.Map<String, Object> req = new java.util.LinkedHashMap<>();
            req.put("op", "audit-show");
            req.put("spiffe_id", q.spiffeId());
            req.put("key", q.key());
            req.put("event", q.event());
            req.put("workload", q.workload());
            req.put("fingerprint", q.fingerprint());
            req.put("pid", q.pid());
            req.put("json", json);
            req.put("since", q.since() == null ? null : q.since().toString());
            req.put("until", q.until() == null ? null : q.until().toString());
            java.util.Map<String, String> a = AdminCall.sendFlat(admin.path(), req, "keywarden audit show",
                    " (or name the ledger FILE)");
            if ("true".equals(a.get("broken"))) {   // as for a FILE that does not verify: said, exit 1
                spec.commandLine().getErr().println("keywarden audit show: " + a.get("error"));
                return 1;
            }
            if (!"true".equals(a.get("ok"))) {
                throw new UserError("keywarden audit show: the daemon refused: " + a.getOrDefault("error", "no reason"));
            }
            spec.commandLine().getOut().print(a.getOrDefault("text", ""));
            spec.commandLine().getOut().flush();
            return 0;
        }
    }

    /** {@code --since} and {@code --until}, for show and report. */
    static final class Period {
        @Option(names = "--since", paramLabel = "TIME|DUR", description = "Records at or after this RFC 3339 time (or"
                + " this long ago, e.g. 24h).")
        String since;

        @Option(names = "--until", paramLabel = "TIME|DUR", description = "Records before this time (or this long ago).")
        String until;
    }

    /** What reading a ledger does. */
    interface LedgerRead {
        void run() throws IOException;
    }

    /**
     * Runs {@code read} of {@code file} for {@code audit COMMAND}: exit 0; 1 when the ledger does not
     * verify (said, nothing of it shown); a missing or unreadable file is bad input, said as such.
     */
    static int reading(String command, Path file, CommandLine.Model.CommandSpec spec, LedgerRead read) throws IOException {
        try {
            read.run();
            return 0;
        } catch (NoSuchFileException e) {
            throw new UserError("keywarden audit " + command + ": " + file + ": no such file");
        } catch (java.nio.file.AccessDeniedException e) {
            throw new UserError("keywarden audit " + command + ": " + e.getFile() + ": permission denied (uid "
                    + io.keywarden.daemon.runtime.DefaultPaths.euid() + "; the ledger is root's, readable by the group of"
                    + " audit.group when one is set: run as root or as a member of that group)");
        } catch (IllegalArgumentException e) {
            spec.commandLine().getErr().println("keywarden audit " + command + ": " + e.getMessage());
            return 1;
        }
    }

    @Command(name = "report", description = "Per workload over a period: keys issued, refreshed and revoked, accesses,"
            + " denials, guard breaches and operator actions; as a table or CSV. The ledger is verified first.",
            footer = {"%nExamples:", "  keywarden audit report /var/log/keywarden/audit.jsonl --since 2026-11-01T00:00:00Z"
                    + " --until 2026-12-01T00:00:00Z", "  keywarden audit report FILE --since 720h --csv > november.csv"})
    static final class Report implements Callable<Integer> {
        @Parameters(paramLabel = "FILE", description = "The ledger (its rotated segments are read too).")
        Path file;

        @CommandLine.Mixin
        Period period = new Period();

        @Option(names = "--csv", description = "Comma-separated values with a header line.")
        boolean csv;

        @Option(names = "--no-verify", description = "Report on a ledger that does not verify (said on top) instead of"
                + " refusing it.")
        boolean noVerify;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() throws IOException {
            AuditQuery q;
            try {
                q = AuditQuery.of(null, null, null, period.since, period.until, null, null, null, java.time.Clock.systemUTC());
            } catch (IllegalArgumentException e) {
                throw new UserError("keywarden audit report: " + e.getMessage());
            }
            return reading("report", file, spec, () -> io.keywarden.daemon.audit.AuditReport.print(file, q.since(),
                    q.until(), csv, !noVerify, spec.commandLine().getOut()));
        }
    }
}
