package io.keywarden.tests.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.daemon.ops.Metrics;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The alerts and the Grafana dashboard only name metrics the daemon really exposes, with labels it sets. */
class AlertsAndDashboardTest {
    private static final Path DEPLOY = Path.of("..", "deploy");
    private static final Pattern NAME = Pattern.compile("\\b(keywarden_[a-z_]+)");

    /** Every series name /metrics can show, after one of each event. */
    private static Set<String> exposed() {
        Metrics m = new Metrics();
        m.registerKey("openai", "dev");
        m.registerGuard("reviewer");
        m.tokens("reviewer", "openai", "gpt-4.1-mini", 1, 1);
        m.gatewayRequest("reviewer", "openai", io.keywarden.daemon.ops.GatewayMetrics.Outcome.OK);
        m.breach("reviewer", "anomaly");
        m.issuerRequest("dev", io.keywarden.issuer.IssuerMetrics.Op.ISSUE, Duration.ofMillis(5));
        m.leaseGauges("openai", new Object(), o -> 1, o -> 60);
        m.unrevokedGauge(new Object(), o -> 0);
        m.revoked("openai", io.keywarden.daemon.lifecycle.RevokeReason.GUARD.label());
        m.buildInfo("1", "abc");
        m.readiness(() -> true);
        m.workloadLeaseGauge("reviewer", "openai", new Object(), o -> 1);
        m.access("reviewer", "openai", io.keywarden.daemon.ops.AuditMetrics.Access.DENIED);
        Set<String> names = new TreeSet<>();
        for (String line : m.scrape().split("\n")) {
            if (!line.startsWith("#") && !line.isBlank()) {
                names.add(line.split("[{ ]")[0]);
            }
        }
        return names;
    }

    private static Set<String> referenced(String text) {
        Set<String> out = new TreeSet<>();
        Matcher m = NAME.matcher(text);
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }

    @Test
    void everyAlertNamesAnExposedMetric() throws Exception {
        Set<String> exposed = exposed();
        Set<String> used = referenced(Files.readString(DEPLOY.resolve("kubernetes/base/prometheusrule.yaml")));
        assertTrue(used.contains("keywarden_guard_breaches_total") && used.contains("keywarden_tokens_total"), used.toString());
        used.removeAll(exposed);
        assertEquals(Set.of(), used, "alerts on metrics the daemon does not expose (exposed: " + exposed + ")");
    }

    @Test
    void everyDashboardPanelQueriesAnExposedMetric() throws Exception {
        JsonNode d = new ObjectMapper().readTree(DEPLOY.resolve("grafana/keywarden-guard.json").toFile());
        Set<String> exposed = exposed();
        int targets = 0;
        for (JsonNode p : d.path("panels")) {
            for (JsonNode t : p.path("targets")) {
                targets++;
                Set<String> used = referenced(t.path("expr").asText());
                assertTrue(!used.isEmpty(), p.path("title") + " queries no keywarden metric");
                used.removeAll(exposed);
                assertEquals(Set.of(), used, "panel " + p.path("title") + " queries what the daemon does not expose");
            }
        }
        assertTrue(targets >= 6, "the dashboard has its panels");
        // An operator picks a node and workloads; health has its panels.
        Set<String> vars = new TreeSet<>();
        d.path("templating").path("list").forEach(v -> vars.add(v.path("name").asText()));
        assertTrue(vars.containsAll(Set.of("node", "workload")), vars.toString());
        String all = d.path("panels").toString();
        for (String m : List.of("keywarden_ready", "keywarden_key_refreshes_total{outcome=\\\"error\\\"",
                "keywarden_ledger_errors_total", "keywarden_access_total{decision=\\\"denied\\\"", "keywarden_workload_leases")) {
            assertTrue(all.contains(m), "a panel on " + m);
        }
    }
}
