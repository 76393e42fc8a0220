package io.keywarden.daemon.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import picocli.CommandLine;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(name = "status", description = "Identities, keys, leases, expiry, last refresh, errors; never secrets.",
        footer = {"%nExamples:", "  keywarden status", "  keywarden status --json | jq '.leases[] | select(.last_error != null)'",
                "  keywarden status --unrevoked     # leases whose revoke at the issuer keeps failing"})
final class StatusCommand implements Callable<Integer> {
    @Mixin
    AdminSocketOption admin;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @picocli.CommandLine.Option(names = "--json", description = "The daemon's answer as JSON.")
    boolean json;

    @picocli.CommandLine.Option(names = "--unrevoked", description = "Only the leases whose revoke the issuer has not"
            + " taken (being retried, or given up on while the key may still work at the provider).")
    boolean unrevoked;

    @Override
    public Integer call() {
        JsonNode a = AdminCall.send(admin.path(), AdminCall.request("status"));
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println((unrevoked ? a.path("unrevoked") : a).toPrettyString());
            return 0;
        }
        if (unrevoked) {
            printUnrevoked(out, a.path("unrevoked"));
            return 0;
        }
        out.printf("node %s, identity %s, issuer %s, delivery %s%n", a.path("node").asText("?"), a.path("identity").asText("?"),
                a.path("issuer").asText("?"), a.path("delivery").asText("?"));
        java.util.List<String[]> rows = new java.util.ArrayList<>();
        rows.add(new String[] {"SPIFFE ID", "WORKLOAD", "KEY", "FINGERPRINT", "PROVIDER KEY", "EXPIRES", "DIES AT PROVIDER",
            "LAST REFRESH", "OPENERS", "ERROR"});
        for (JsonNode l : a.path("leases")) {
            rows.add(new String[] {l.path("spiffe_id").asText("-"), l.path("workload").asText(), l.path("key").asText(),
                l.path("fingerprint").asText("-"), l.path("provider_key_id").asText("-"), l.path("expires_at").asText("-"),
                l.path("provider_expires_at").asText("-"), l.path("last_refresh").asText("-"),
                Integer.toString(l.path("openers").asInt()), l.path("last_error").asText("")});
        }
        table(out, rows);
        a.path("blocked").fields().forEachRemaining(e -> out.printf("blocked: %s (%s)%n", e.getKey(), e.getValue().asText()));
        int n = a.path("unrevoked").size();
        if (n > 0) {
            out.printf("unrevoked: %d lease%s the issuer has not revoked (keywarden status --unrevoked)%n", n,
                    n == 1 ? "" : "s");
        }
        return 0;
    }

    /** The leases whose revoke failed: still retried, or left to die at the provider. */
    private static void printUnrevoked(PrintWriter out, JsonNode list) {
        if (list.isEmpty()) {
            out.println("no unrevoked leases");
            return;
        }
        java.util.List<String[]> rows = new java.util.ArrayList<>();
        rows.add(new String[] {"WORKLOAD", "KEY", "LEASE", "FINGERPRINT", "PROVIDER KEY", "ATTEMPTS", "NEXT TRY",
            "LIVE UNTIL", "LAST ERROR"});
        for (JsonNode e : list) {
            String until = e.path("live_until").asText("-") + (e.hasNonNull("provider_expires_at") ? "" : " (lease end;"
                    + " no expiry known at the provider)");
            rows.add(new String[] {e.path("workload").asText(), e.path("key").asText(), e.path("lease_id").asText(),
                e.path("fingerprint").asText("-"), e.path("provider_key_id").asText("-"),
                Integer.toString(e.path("attempts").asInt()), e.path("next_try").asText("given up"), until,
                e.path("last_error").asText("")});
        }
        table(out, rows);
    }

    private static void table(PrintWriter out, java.util.List<String[]> rows) {
        String[] head = rows.get(0);
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
    }
}
