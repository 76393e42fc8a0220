package io.keywarden.tests.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.linux.Mounts;
import io.keywarden.testkit.Await;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** File mode with the usage-API sensor: usage reported by the provider trips the workload's guard. */
class UsageApiIT {
    @Test
    void usageReportedByTheProviderBlocksAFileModeWorkload() throws Exception {
        Requirements.rootAndFuse();
        Await.clearOfWindowEdge(Duration.ofHours(1), Duration.ofSeconds(60));
        Path dir = Files.createTempDirectory("kw-usage-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mnt = dir.resolve("mnt");
        Path ledger = dir.resolve("audit.jsonl");
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai: {}
                workloads:
                  - name: filer
                    spiffeId: spiffe://example.org/filer
                    selectors: [unix:uid:1001]
                    keys: [openai]
                    guard:
                      budget: {tokensPerHour: 1000}
                      onBreach: block
                """);
        Files.writeString(dir.resolve("admin.key"), UsageApiStub.ADMIN_KEY + "\n");
        try (UsageApiStub api = new UsageApiStub()) {
            Files.writeString(dir.resolve("config.yaml"), """
                    policy: policy.yaml
                    issuers: {dev: {type: dev}}
                    usage:
                      openai: {url: "%s", adminKeyFile: admin.key, interval: 1s}
                    """.formatted(api.url()));
            try (Daemon d = Daemon.start(Map.of(), "dev", "--mount", mnt.toString(), "--policy",
                    dir.resolve("policy.yaml").toString(), "--config", dir.resolve("config.yaml").toString(),
                    "--audit", ledger.toString(), "--admin-socket", dir.resolve("admin.sock").toString(),
                    "--listen", "127.0.0.1:" + Ports.free())) {
                d.awaitOut("serving KeyFS", 30);
                String file = mnt.resolve("openai/api_key").toString();
                assertTrue(Proc.as(1001, "cat", file).out().startsWith("sk-dev-"));
                Matcher m = Pattern.compile("\"provider_key_id\":\"([^\"]+)\"").matcher(Files.readString(ledger));
                assertTrue(m.find(), "key.issued names the provider's key id");
                String keyId = m.group(1);
                api.usage.put(keyId, new long[] {400, 200, 3});
                api.usage.put("key_of_someone_else", new long[] {900_000, 0, 1});
                Await.until(Duration.ofSeconds(10), () -> api.queries.size() >= 4, () -> "polled twice, two pages each");
                // One more poll after the usage was there: what it saw was settled before the next began.
                int seen = api.queries.size();
                Await.until(Duration.ofSeconds(10), () -> api.queries.size() >= seen + 4, () -> "polled twice more");
                assertTrue(Proc.as(1001, "cat", file).out().startsWith("sk-dev-"), "600 of 1000: still served");
                assertFalse(Files.readString(ledger).contains("guard.breach"), "unattributed usage is not the workload's");
                api.usage.put(keyId, new long[] {700, 400, 5});
                Await.until(Duration.ofSeconds(10), () -> Proc.as(1001, "cat", file).err().contains("Permission denied"),
                        () -> "the usage API's 1100 tokens block the workload");
                String text = Files.readString(ledger);
                assertTrue(text.contains("\"event\":\"guard.breach\"") && text.contains("\"sensor\":\"usage-api\"")
                        && text.contains("\"observed\":\"1100\""), text);
                String everything = text + String.join("\n", d.out) + String.join("\n", d.err);
                assertFalse(everything.contains(UsageApiStub.ADMIN_KEY), "the admin key is nowhere");
                assertEquals(0, d.stop());
            }
        } finally {
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }
}
