package io.keywarden.daemon.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintWriter;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code keywarden fleet status|nodes}: the fleet's inventory, through this node's daemon (which holds the Redis connection). */
@Command(name = "fleet", description = "The fleet's inventory (fleet: in the config): which node holds which key.",
        subcommands = {FleetCommand.Status.class, FleetCommand.Nodes.class})
final class FleetCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required (status, nodes)");
    }

    /** What both subcommands share: the admin socket, {@code --json}, and the daemon's inventory answer. */
    abstract static class Inventory implements Callable<Integer> {
        @Mixin
        AdminSocketOption admin;

        @Option(names = "--json", description = "The inventory as JSON.")
        boolean json;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            JsonNode a = AdminCall.send(admin.path(), AdminCall.request("fleet"));
            if (!a.path("ok").asBoolean(false)) {
                spec.commandLine().getErr().println("keywarden fleet: " + a.path("error").asText("no answer"));
                return 3;
            }
            print(a, spec.commandLine().getOut());
            return 0;
        }

        abstract void print(JsonNode inventory, PrintWriter out);
    }

    static void table(PrintWriter out, List<String[]> rows) {
        int[] w = new int[rows.get(0).length];
        for (String[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                w[i] = Math.max(w[i], r[i].length());
            }
        }
        for (String[] r : rows) {
            StringBuilder b = new StringBuilder();
            for (int i = 0; i < r.length; i++) {
                b.append(String.format("%-" + (w[i] + 2) + "s", r[i]));
            }
            out.println(b.toString().stripTrailing());
        }
    }

    @Command(name = "status", description = "Every lease held in the fleet: SPIFFE ID, workload, key, fingerprint, provider"
            + " key id, expiry, openers, node; stale nodes marked.")
    static final class Status extends Inventory {
        @Option(names = "--workload", paramLabel = "NAME", description = "Only this workload's leases.")
        String workload;

        @Override
        void print(JsonNode a, PrintWriter out) {
            List<String[]> rows = new ArrayList<>();
            rows.add(new String[] {"NODE", "SPIFFE ID", "WORKLOAD", "KEY", "FINGERPRINT", "PROVIDER KEY", "EXPIRES", "OPENERS"});
            com.fasterxml.jackson.databind.node.ArrayNode leases = com.fasterxml.jackson.databind.node.JsonNodeFactory
                    .instance.arrayNode();
            for (JsonNode n : a.path("nodes")) {
                String node = n.path("node").asText() + (n.path("stale").asBoolean() ? " (stale)" : "");
                for (JsonNode l : n.path("leases")) {
                    if (workload != null && !workload.equals(l.path("workload").asText())) {
                        continue;
                    }
                    leases.add(((com.fasterxml.jackson.databind.node.ObjectNode) l.deepCopy()).put("node", n.path("node")
                            .asText()).put("stale", n.path("stale").asBoolean()));
                    rows.add(new String[] {node, l.path("spiffe_id").asText("-"), l.path("workload").asText(),
                        l.path("key").asText(), l.path("fingerprint").asText("-"), l.path("provider_key_id").asText("-"),
                        l.path("expires_at").asText("-"), Integer.toString(l.path("openers").asInt())});
                }
            }
            if (json) {
                out.println(leases.toPrettyString());
            } else {
                table(out, rows);
            }
        }
    }

    @Command(name = "nodes", description = "Every node of the fleet: version, last heartbeat, leases held, its readiness"
            + " (yes, degraded, no) as of that heartbeat, stale or not.")
    static final class Nodes extends Inventory {
        @Override
        void print(JsonNode a, PrintWriter out) {
            if (json) {
                out.println(a.path("nodes").toPrettyString());
                return;
            }
            List<String[]> rows = new ArrayList<>();
            rows.add(new String[] {"NODE", "VERSION", "LAST HEARTBEAT", "LEASES", "READY", "STATE"});
            for (JsonNode n : a.path("nodes")) {
                long at = n.path("heartbeat_at").asLong(0);
                String ready = !n.has("ready") ? "-" : !n.path("ready").asBoolean() ? "no"
                        : n.path("degraded").asBoolean() ? "degraded" : "yes";
                rows.add(new String[] {n.path("node").asText(), n.path("version").asText("-"),
                    at == 0 ? "-" : Instant.ofEpochMilli(at).toString(), Integer.toString(n.path("leases").size()), ready,
                    n.path("stale").asBoolean() ? "stale" : "live"});
            }
            table(out, rows);
        }
    }
}
