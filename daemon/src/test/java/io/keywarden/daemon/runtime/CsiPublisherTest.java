package io.keywarden.daemon.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.lifecycle.LeaseEvents;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.daemon.lifecycle.SystemScheduler;
import io.keywarden.daemon.ops.Metrics;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.issuer.dev.DevIssuer;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a CSI publish means to the daemon: recorded, and the keys of the workload whose SPIFFE ID is
 * the pod's service account issued ahead of its first read — only that workload's.
 */
class CsiPublisherTest {
    @TempDir
    Path dir;
    private SystemScheduler scheduler;
    private LeaseManager leases;
    private Ledger ledger;
    private CsiPublisher csi;

    @BeforeEach
    void setUp() throws Exception {
        Policy policy = PolicyLoader.parse("""
                keys: {openai: {}, anthropic: {}}
                workloads:
                  - {name: reviewer, spiffeId: "spiffe://t/ns/agents/sa/reviewer", selectors: ["unix:uid:1001"], keys: [openai, anthropic]}
                  - {name: other, spiffeId: "spiffe://t/ns/agents/sa/other", selectors: ["unix:uid:1002"], keys: [openai]}
                """, "p.yaml");
        scheduler = new SystemScheduler(Clock.systemUTC(), 2);
        leases = new LeaseManager(new DevIssuer(Duration.ofMinutes(5), Clock.systemUTC()), () -> policy, Clock.systemUTC(),
                scheduler, new Random(1), LeaseEvents.NONE, p -> true);
        ledger = Ledger.open(dir.resolve("audit.jsonl"), "n", Clock.systemUTC(), Long.MAX_VALUE, Duration.ZERO, null);
        csi = new CsiPublisher(() -> policy, () -> leases, new AuditTrail(ledger, new Metrics(), new Readiness()));
    }

    @AfterEach
    void tearDown() throws Exception {
        leases.shutdown(true);
        scheduler.close();
        ledger.close();
    }

    private List<JsonNode> records(String event) throws Exception {
        ObjectMapper json = new ObjectMapper();
        List<JsonNode> out = new java.util.ArrayList<>();
        for (String l : Files.readAllLines(dir.resolve("audit.jsonl"))) {
            JsonNode n = json.readTree(l);
            if (event.equals(n.path("event").asText())) {
                out.add(n);
            }
        }
        return out;
    }

    private long live(String workload) {
        return leases.view().stream().filter(v -> v.workload().equals(workload) && v.leaseId() != null).count();
    }

    @Test
    void aPodOfAWorkloadsServiceAccountGetsItsKeysAheadOfItsFirstRead() throws Exception {
        csi.published("vol-1", dir.resolve("target"), Map.of("pod.namespace", "agents", "pod.name", "r-1",
                "serviceAccount.name", "reviewer"));
        io.keywarden.testkit.Await.until(Duration.ofSeconds(10), () -> live("reviewer") == 2,
                () -> "reviewer's keys were not both issued: " + leases.view());
        assertEquals(0, live("other"), "nobody else's");
        JsonNode r = records("csi.published").get(0);
        assertEquals("vol-1", r.path("volume_id").asText(), r.toString());
        assertTrue(r.toString().contains("reviewer/openai") && r.toString().contains("reviewer/anthropic"), r.toString());
    }

    @Test
    void aPodOfNoWorkloadIsRecordedAndGetsNothing() throws Exception {
        csi.published("vol-2", dir.resolve("target"), Map.of("pod.namespace", "agents", "serviceAccount.name", "default"));
        csi.unpublished("vol-2", dir.resolve("target"));
        assertEquals(0, leases.view().stream().filter(v -> v.leaseId() != null).count());
        assertTrue(records("csi.published").get(0).toString().contains("\"preissued\":[]"),
                records("csi.published").toString());
        assertEquals(1, records("csi.unpublished").size());
    }
}
