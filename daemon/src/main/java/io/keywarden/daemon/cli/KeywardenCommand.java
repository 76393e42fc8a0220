package io.keywarden.daemon.cli;

import io.keywarden.daemon.BuildInfo;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

@Command(name = "keywarden",
        description = "Serves short-lived LLM API keys to attested workloads through a per-process file mount.",
        mixinStandardHelpOptions = true,
        versionProvider = KeywardenCommand.Version.class,
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:ok", "1:the check failed", "2:bad input or usage", "3:runtime failure"})
public final class KeywardenCommand implements Runnable {

    @Option(names = "--log-format", scope = ScopeType.INHERIT, paramLabel = "text|json",
            description = "Log format on stderr (also env KEYWARDEN_LOG_FORMAT). Default: text.")
    String logFormat;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a command is required");
    }

    /**
     * Every command, in the order help lists them, by class name: a CLI call loads the class of
     * its own command only.
     */
    private static final String[][] COMMANDS = {{"run", "RunCommand"}, {"dev", "DevCommand"}, {"policy", "PolicyCommand"},
        {"audit", "AuditCommand"}, {"status", "StatusCommand"}, {"revoke", "RevokeCommand"}, {"unblock", "UnblockCommand"},
        {"why", "WhyCommand"}, {"exec", "ExecCommand"}, {"fleet", "FleetCommand"}, {"jwks", "JwksCommand"},
        {"version", "VersionCommand"}};

    private static Object command(String simpleName) {
        try {
            return Class.forName(KeywardenCommand.class.getPackageName() + "." + simpleName).getDeclaredConstructor()
                    .newInstance();
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("the command class " + simpleName + " cannot be made", e);
        }
    }

    public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        return commandLine(out, err, null);
    }

    /**
     * The command line; given the first argument and when it names a command, with that command
     * only: picocli builds its model by reflection over every command it holds, which was most of a
     * CLI call's 0.5 s (help, a mistyped command and no command get the whole tree).
     */
    public static CommandLine commandLine(PrintWriter out, PrintWriter err, String first) {
        CommandLine cl = new CommandLine(new KeywardenCommand());
        String[] only = first == null ? null : java.util.Arrays.stream(COMMANDS).filter(c -> c[0].equals(first)).findFirst()
                .orElse(null);
        if (only != null) {
            cl.addSubcommand(only[0], command(only[1]));
        } else {
            for (String[] c : COMMANDS) {
                cl.addSubcommand(c[0], command(c[1]));
            }
            cl.addSubcommand("help", new CommandLine.HelpCommand());
        }
        addHelpOptions(cl);
        if (cl.getSubcommands().containsKey("exec")) {
            // exec's command keeps its own options: everything after the first positional (or --) is CMD's.
            cl.getSubcommands().get("exec").setStopAtPositional(true);
        }
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOut(out);
        cl.setErr(err);
        cl.setExitCodeExceptionMapper(t -> ExitCode.RUNTIME);
        cl.setParameterExceptionHandler((ex, args) -> {
            CommandLine c = ex.getCommandLine();
            // One prefix for every usage error: the command as typed ("keywarden audit show: …").
            c.getErr().println(c.getCommandSpec().qualifiedName() + ": " + ex.getMessage());
            if (ex instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()) {
                c.getErr().println("Did you mean: " + String.join(" or ", u.getSuggestions().stream()
                        .map(x -> c.getCommandSpec().qualifiedName() + " " + x).toList()) + "?");
            }
            c.getErr().println("Try '" + c.getCommandSpec().qualifiedName() + " --help'.");
            return ExitCode.BAD_INPUT;
        });
        cl.setExecutionExceptionHandler((ex, c, parsed) -> {
            PrintWriter e = c.getErr();
            String prefix = c.getCommandSpec().qualifiedName() + ": ";
            if (ex instanceof io.keywarden.daemon.InputProblem u) {
                u.lines().forEach(l -> e.println(prefixed(l, prefix)));
                return ExitCode.BAD_INPUT;
            }
            if (ex instanceof io.keywarden.daemon.RuntimeFailure) {
                e.println(prefixed(ex.getMessage(), prefix));
                return ExitCode.RUNTIME;
            }
            // Our own exceptions never carry secrets; say what failed, not a class name or a stack trace.
            e.println("keywarden " + c.getCommandName() + ": " + (ex.getMessage() == null
                    ? "failed unexpectedly (run with KEYWARDEN_LOG_LEVEL=DEBUG for details)" : ex.getMessage()));
            org.slf4j.LoggerFactory.getLogger(KeywardenCommand.class).debug("{} failed", c.getCommandName(), ex);
            return ExitCode.RUNTIME;
        });
        return cl;
    }

    private static final java.util.regex.Pattern LOCATED = java.util.regex.Pattern.compile("^\\S+:\\d+:\\d+: .*");

    /**
     * One prefix for every error: the command as typed ({@code keywarden audit show: …}); a line
     * located in a file ({@code FILE:LINE:COL: …}) stays as compilers print it.
     */
    static String prefixed(String line, String prefix) {
        if (line == null || line.startsWith(prefix) || LOCATED.matcher(line).matches()) {
            return line;
        }
        if (line.startsWith("keywarden: ")) {
            return prefix + line.substring("keywarden: ".length());
        }
        return line.startsWith("keywarden ") ? line : prefix + line;
    }

    private static void addHelpOptions(CommandLine cl) {
        cl.getCommandSpec().usageMessage().showDefaultValues(true);
        for (CommandLine sub : cl.getSubcommands().values()) {
            if (!(sub.getCommand() instanceof CommandLine.HelpCommand)) {
                sub.getCommandSpec().mixinStandardHelpOptions(true);
            }
            addHelpOptions(sub);
        }
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            BuildInfo b = BuildInfo.load();
            return new String[] {"keywarden " + b.version(), "built " + b.built() + " from commit " + b.commit(),
                "java " + System.getProperty("java.version") + " (" + System.getProperty("java.vendor") + ")"};
        }
    }
}
