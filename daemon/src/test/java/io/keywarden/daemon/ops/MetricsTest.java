package io.keywarden.daemon.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class MetricsTest {

    @Test
    void everyMeterHasHelpAndTheAlertedCountersStartAtZero() {
        Metrics m = new Metrics();
        m.registerKey("openai", "bao");
        m.issuerRequest("vault", io.keywarden.issuer.IssuerMetrics.Op.ISSUE, Duration.ofMillis(30));
        m.revoked("openai", io.keywarden.daemon.lifecycle.RevokeReason.OPERATOR.label());
        m.buildInfo("1.2.3", "0123456789ab");
        m.readiness(() -> true);
        String text = m.scrape();
        // The JVM's and the process's own meters, and which build runs.
        for (String name : List.of("jvm_memory_used_bytes", "jvm_gc_", "jvm_threads_live_threads", "process_cpu_usage",
                "process_files_open_files", "process_uptime_seconds", "process_resident_memory_bytes")) {
            assertTrue(text.contains("\n" + name), "exposed: " + name);
        }
        assertTrue(text.contains("keywarden_build_info{commit=\"0123456789ab\",version=\"1.2.3\"} 1"), text);
        for (String line : text.lines().filter(l -> l.startsWith("# HELP")).toList()) {
            assertTrue(line.split(" ", 4).length == 4 && line.split(" ", 4)[3].length() > 10, "HELP text: " + line);
        }
        long types = text.lines().filter(l -> l.startsWith("# TYPE")).count();
        long helps = text.lines().filter(l -> l.startsWith("# HELP")).count();
        assertEquals(types, helps, "a HELP per meter");
        for (String zero : List.of("keywarden_keys_issued_total{issuer=\"bao\",key=\"openai\",outcome=\"error\"} 0.0",
                "keywarden_key_refreshes_total{issuer=\"bao\",key=\"openai\",outcome=\"error\"} 0.0",
                "keywarden_access_total{decision=\"denied\",key=\"openai\",workload=\"\"} 0.0",
                "keywarden_ledger_errors_total 0.0", "keywarden_ready 1.0")) {
            assertTrue(text.contains(zero), "registered at zero: " + zero + "\n" + text);
        }
        assertTrue(text.contains("keywarden_keys_revoked_total{key=\"openai\",reason=\"operator\"} 1.0"), text);
        long buckets = text.lines().filter(l -> l.startsWith("keywarden_issuer_request_seconds_bucket")).count();
        assertEquals(10, buckets, "nine buckets and +Inf");
    }

    @Test
    void metersLookedUpAgainCountOnTheSameSeriesAndFollowAKeysNewIssuer() {
        Metrics m = new Metrics();
        m.registerKey("openai", "bao");
        for (int i = 0; i < 3; i++) {
            m.issued("openai", AuditMetrics.Outcome.OK);
            m.issuerRequest("bao", io.keywarden.issuer.IssuerMetrics.Op.REVOKE, Duration.ofMillis(20));
            m.tokens("w1", "openai", "gpt-4o", 10, 5);
            m.gatewayRequest("w1", "openai", GatewayMetrics.Outcome.OK);
            m.breach("w1", "model");
        }
        // A reloaded policy moves the key to another issuer: its counts go to that issuer's series.
        m.registerKey("openai", "openai-admin");
        m.issued("openai", AuditMetrics.Outcome.OK);
        String text = m.scrape();
        for (String line : List.of("keywarden_keys_issued_total{issuer=\"bao\",key=\"openai\",outcome=\"ok\"} 3.0",
                "keywarden_keys_issued_total{issuer=\"openai-admin\",key=\"openai\",outcome=\"ok\"} 1.0",
                "keywarden_issuer_request_seconds_count{issuer=\"bao\",op=\"revoke\"} 3",
                "keywarden_tokens_total{direction=\"in\",key=\"openai\",model=\"gpt-4o\",workload=\"w1\"} 30.0",
                "keywarden_tokens_total{direction=\"out\",key=\"openai\",model=\"gpt-4o\",workload=\"w1\"} 15.0",
                "keywarden_guard_breaches_total{kind=\"model\",workload=\"w1\"} 3.0")) {
            assertTrue(text.contains(line), "counted on one series: " + line + "\n" + text);
        }
        assertTrue(text.lines().anyMatch(l -> l.startsWith("keywarden_gateway_requests_total{") && l.endsWith(" 3.0")), text);
    }

    @Test
    void revokeReasonsAreAFixedSetOfLabels() {
        assertEquals(List.of("refreshed", "idle", "shutdown", "operator", "policy", "expired", "guard"),
                java.util.Arrays.stream(io.keywarden.daemon.lifecycle.RevokeReason.values())
                        .map(io.keywarden.daemon.lifecycle.RevokeReason::label).toList());
    }
}
