package io.keywarden.daemon.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code keywarden why}: the running daemon's decision for a process or a uid, and the rule that fails. */
@Command(name = "why", description = "Ask the running daemon whether a process (or a uid) may read its keys, and which"
        + " rule refuses it: who the process is, the key's grant, the workload's readers, a block. Nothing is recorded."
        + " Exit 0 when the daemon could decide.",
        footer = {"%nExamples:", "  keywarden why --pid 4242", "  keywarden why --uid 1001 --key openai"})
final class WhyCommand implements Callable<Integer> {
    @Option(names = "--pid", paramLabel = "PID", description = "A running process to decide for.")
    Integer pid;

    @Option(names = "--uid", paramLabel = "UID", description = "A uid to decide for, without a process (the dev"
            + " identity's selectors; SPIRE needs --pid).")
    Long uid;

    @Option(names = "--key", paramLabel = "KEY", description = "One key (default: every key of the policy).")
    String key;

    @CommandLine.Mixin
    AdminSocketOption admin;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        if ((pid == null) == (uid == null)) {
            throw new UserError("keywarden why: name a process with --pid PID or a uid with --uid UID");
        }
        if ((pid != null && pid <= 0) || (uid != null && (uid < 0 || uid > 0xffffffffL))) {
            throw new UserError("keywarden why: " + (pid != null ? "--pid " + pid : "--uid " + uid) + " is out of range");
        }
        ObjectNode req = AdminCall.request("why");
        if (pid != null) {
            req.put("pid", pid);
        } else {
            req.put("uid", uid);
        }
        if (key != null) {
            req.put("key", key);
        }
        JsonNode a = AdminCall.send(admin.path(), req);
        a.path("lines").forEach(l -> spec.commandLine().getOut().println(l.asText()));
        return a.path("decided").asBoolean(false) ? 0 : 1;
    }
}
