package io.keywarden.daemon.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import picocli.CommandLine;
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

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        JsonNode a = AdminCall.send(admin.socket, AdminCall.request("unblock").put("spiffe_id", spiffeId));
        spec.commandLine().getOut().println(a.path("was_blocked").asBoolean() ? "unblocked " + spiffeId
                : spiffeId + " was not blocked");
        return 0;
    }
}
