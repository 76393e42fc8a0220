package io.keywarden.daemon.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import picocli.CommandLine;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "unblock", description = "Lift a block set by revoke --block (or the guard's, before its window ends).",
        footer = {"%nExamples:", "  keywarden unblock --workload research", "  keywarden unblock --workload research --fleet"})
final class UnblockCommand implements Callable<Integer> {
    @Mixin
    AdminSocketOption admin;

    @picocli.CommandLine.ArgGroup(exclusive = true, multiplicity = "1")
    WhichWorkload which;

    @picocli.CommandLine.Option(names = "--fleet", description = "Lift the block on every node of the fleet.")
    boolean fleet;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        JsonNode a = AdminCall.send(admin.path(), which.into(AdminCall.request("unblock")).put("fleet", fleet));
        spec.commandLine().getOut().println(a.path("was_blocked").asBoolean() ? "unblocked " + which.describe()
                : which.describe() + " was not blocked");
        if (a.hasNonNull("warning")) {
            spec.commandLine().getErr().println("keywarden unblock: " + a.get("warning").asText());
            return 1;
        }
        return 0;
    }
}
