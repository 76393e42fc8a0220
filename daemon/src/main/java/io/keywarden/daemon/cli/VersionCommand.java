package io.keywarden.daemon.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;

@Command(name = "version", description = "Print the version and build information.")
final class VersionCommand implements Callable<Integer> {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        for (String line : new KeywardenCommand.Version().getVersion()) {
            spec.commandLine().getOut().println(line);
        }
        return 0;
    }
}
