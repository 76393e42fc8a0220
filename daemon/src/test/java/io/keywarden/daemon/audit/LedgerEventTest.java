package io.keywarden.daemon.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LedgerEventTest {
    private static final Pattern ROW = Pattern.compile("^\\| `([a-z._]+)` \\| (.*) \\|$");

    @Test
    void theDocsTableListsEveryEventWithItsFields() throws Exception {
        Map<String, List<String>> docs = new LinkedHashMap<>();
        for (String line : Files.readAllLines(Path.of("../docs/operations.md"))) {
            Matcher m = ROW.matcher(line);
            if (m.matches()) {
                docs.put(m.group(1), Arrays.stream(m.group(2).split(", ")).map(f -> f.replace("`", "")).toList());
            }
        }
        Map<String, List<String>> code = Arrays.stream(LedgerEvent.values()).collect(Collectors.toMap(
                LedgerEvent::wire, e -> List.copyOf(e.fields()), (a, b) -> a, LinkedHashMap::new));
        assertEquals(code, docs, "docs/operations.md's table of ledger events and LedgerEvent differ");
    }

    @Test
    void anUndeclaredFieldIsRefusedAndNothingIsWritten(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("audit.jsonl");
        Ledger ledger = Ledger.open(file, "n1", java.time.Clock.systemUTC(), Long.MAX_VALUE, java.time.Duration.ZERO, null);
        try {
            AuditTrail trail = new AuditTrail(ledger, new io.keywarden.daemon.ops.Metrics(), new io.keywarden.daemon.ops.Readiness());
            trail.record(LedgerEvent.POLICY_LOADED, Map.of("reason", "ok"));
            long size = Files.size(file);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> trail.record(LedgerEvent.POLICY_LOADED, Map.of("reason", "ok", "resaon", "typo")));
            assertTrue(e.getMessage().contains("policy.loaded does not declare the field(s) [resaon]"), e.getMessage());
            assertEquals(size, Files.size(file), "nothing written");
            trail.record(LedgerEvent.KEY_ISSUED, Map.of("workload", "w", "key", "openai", "reason", "first use"));
        } finally {
            ledger.close();
        }
    }

    @Test
    void groupsAreSharedAndOrdered() {
        assertEquals(List.of("workload", "spiffe_id", "key", "lease_id", "provider_key_id", "fingerprint", "expires_at",
                "provider_expires_at", "revocable", "issuer", "reason", "attempt", "retry_at"),
                List.copyOf(LedgerEvent.KEY_REVOKE_FAILED.fields()));
        assertTrue(LedgerEvent.ACCESS_DENIED.fields().containsAll(List.of("pid", "uid", "exe", "code", "repeats")));
    }
}
