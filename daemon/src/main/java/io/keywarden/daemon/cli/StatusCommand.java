package io.keywarden.daemon.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import picocli.CommandLine;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(name = "status", description = "Identities, keys, leases, expiry, last refresh, errors; never secrets.")
final class StatusCommand implements Callable<Integer> {
    @Mixin
    AdminSocketOption admin;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @picocli.CommandLine.Option(names = "--json", description = "The daemon's answer as JSON.")
    boolean json;

    @Override
    public Integer call() {
        JsonNode a = AdminCall.send(admin.socket, AdminCall.request("status"));
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(a.toPrettyString());
            return 0;
        }
        out.printf("node %s, identity %s, issuer %s, delivery %s%n", a.path("node").asText("?"), a.path("identity").asText("?"),
                a.path("issuer").asText("?"), a.path("delivery").asText("?"));
        String[] head = {"SPIFFE ID", "WORKLOAD", "KEY", "FINGERPRINT", "PROVIDER KEY", "EXPIRES", "LAST REFRESH", "OPENERS",
            "ERROR"};
        java.util.List<String[]> rows = new java.util.ArrayList<>();
        rows.add(head);
        for (JsonNode l : a.path("leases")) {
            rows.add(new String[] {l.path("spiffe_id").asText("-"), l.path("workload").asText(), l.path("key").asText(),
                l.path("fingerprint").asText("-"), l.path("provider_key_id").asText("-"), l.path("expires_at").asText("-"),
                l.path("last_refresh").asText("-"),
                Integer.toString(l.path("openers").asInt()), l.path("last_error").asText("")});
        }
        int[] width = new int[head.length];
        for (String[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                width[i] = Math.max(width[i], r[i].length());
            }
        }
        for (String[] r : rows) {
            StringBuilder line = new StringBuilder();
            for (int i = 0; i < r.length; i++) {
                line.append(i == r.length - 1 ? r[i] : String.format("%-" + (width[i] + 2) + "s", r[i]));
            }
            out.println(line.toString().stripTrailing());
        }
        a.path("blocked").fields().forEachRemaining(e -> out.printf("blocked: %s (%s)%n", e.getKey(), e.getValue().asText()));
        return 0;
    }
}
