package io.keywarden.daemon;

import io.keywarden.daemon.cli.KeywardenCommand;
import java.io.PrintWriter;
import picocli.CommandLine;

/** Entry point of {@code keywarden}. */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        selectLogFormat(args);
        System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs one command and returns its exit code; never throws. */
    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        CommandLine cl = KeywardenCommand.commandLine(out, err, firstCommand(args));
        return cl.execute(args);
    }

    /** The first argument that is not an option of keywarden itself (the command), or null. */
    static String firstCommand(String[] args) {
        for (int i = 0; i < args.length; i++) {
            if (args[i].equals("--log-format")) {
                i++;
            } else if (!args[i].startsWith("-")) {
                return args[i];
            }
        }
        return null;
    }

    /** Logback reads its format once, at first use: settle it before any logger exists. */
    private static void selectLogFormat(String[] args) {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("--log-format=")) {
                System.setProperty("KEYWARDEN_LOG_FORMAT", a.substring("--log-format=".length()));
            } else if (a.equals("--log-format") && i + 1 < args.length) {
                System.setProperty("KEYWARDEN_LOG_FORMAT", args[i + 1]);
            }
        }
    }
}
