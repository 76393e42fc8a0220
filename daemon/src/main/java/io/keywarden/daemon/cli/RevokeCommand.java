package io.keywarden.daemon.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import picocli.CommandLine;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "revoke", description = "Kill switch: revoke a workload's keys now; a fresh key on next open unless --block.",
        footer = {"%nExamples:", "  keywarden revoke --workload research --reason 'key pasted in a ticket'",
                "  keywarden revoke --spiffe-id spiffe://example.org/ns/agents/sa/research --block --reason 'incident 42'",
                "  keywarden revoke --workload research --block --fleet --reason 'runaway spend'   # every node"})
final class RevokeCommand implements Callable<Integer> {
    @Mixin
    AdminSocketOption admin;

    @picocli.CommandLine.ArgGroup(exclusive = true, multiplicity = "1")
    WhichWorkload which;

    @Option(names = "--key", paramLabel = "NAME", description = "Only this key of the workload (default: all its keys).")
    String key;

    @Option(names = "--block", description = "Refuse new keys to this workload until unblocked.")
    boolean block;

    @Option(names = "--reason", paramLabel = "TEXT", description = "Why, for the ledger (with your uid). Default: kill"
            + " switch.")
    String reason;

    @Option(names = "--fleet", description = "With --block: block the workload on every node of the fleet (fleet: in the config).")
    boolean fleet;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        ObjectNode req = which.into(AdminCall.request("revoke")).put("block", block)
                .put("reason", reason == null ? "kill switch" : reason)
                .put("fleet", fleet);
        if (key != null) {
            req.put("key", key);
        }
        if (fleet && !block) {
            spec.commandLine().getErr().println("keywarden revoke: --fleet needs --block (a revoke is per node)");
            return 2;
        }
        JsonNode a = AdminCall.send(admin.path(), req);
        spec.commandLine().getOut().printf("revoked %d lease(s) of %s%s%n", a.path("revoked").asInt(), which.describe(),
                block ? "; blocked until `keywarden unblock`" + (fleet ? " --fleet, on every node" : "")
                        : "; a fresh key is issued on the next open");
        if (a.hasNonNull("warning")) {
            spec.commandLine().getErr().println("keywarden revoke: " + a.get("warning").asText());
            return fleet ? 1 : 0;
        }
        return 0;
    }
}
