package io.keywarden.tests.bench;

import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.vault.FakeVault;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code keywarden run} with N workloads × 1 key, a short TTL, tmpfs delivery (issued eagerly, no
 * reader processes needed) against the fake Vault, for a while; then: expired keys, missed
 * refreshes, issuer calls per refresh, CPU and RSS of the daemon. Figures are printed, not asserted.
 * {@code -Dscale.workloads=1000 -Dscale.ttl=30 -Dscale.seconds=300}
 */
class ScaleBench {
    static final int WORKLOADS = Integer.getInteger("scale.workloads", 1000);
    static final int TTL = Integer.getInteger("scale.ttl", 30);
    static final int SECONDS = Integer.getInteger("scale.seconds", 300);

    static String fetch(String url) {
        try {
            return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
        } catch (Exception e) {
            throw new IllegalStateException(e.getMessage());
        }
    }

    static long[] cpuTicksAndRssKb(long pid) throws Exception {
        String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        long ticks = Long.parseLong(f[11]) + Long.parseLong(f[12]);
        long rss = 0;
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
            if (line.startsWith("VmRSS:")) {
                rss = Long.parseLong(line.replaceAll("\\D", ""));
            }
        }
        return new long[] {ticks, rss};
    }

    @Test
    void manyWorkloads() throws Exception {
        Requirements.root();
        Path dir = Files.createTempDirectory("kw-scale-");
        int port = io.keywarden.tests.support.Ports.free();
        String jwks = "http://127.0.0.1:" + port + "/.well-known/jwks.json";
        StringBuilder policy = new StringBuilder("keys:\n  openai:\n    vault: {role: \"{workload}\", path: \"openai/creds/{workload}\"}\n"
                + "    grace: 5s\nworkloads:\n");
        try (FakeVault vault = new FakeVault(new java.util.function.Supplier<>() {
            volatile String cached;

            @Override
            public String get() {
                String c = cached;
                return c != null ? c : (cached = fetch(jwks));
            }
        })) {
            for (int i = 0; i < WORKLOADS; i++) {
                String name = "w" + i;
                policy.append("  - {name: ").append(name).append(", spiffeId: \"spiffe://scale.local/").append(name)
                        .append("\", selectors: [\"unix:uid:").append(20000 + i).append("\"], keys: [openai]}\n");
                vault.role(name, "spiffe://scale.local/" + name, "vault", Duration.ofHours(1), Duration.ofSeconds(TTL));
            }
            vault.start();
            Files.writeString(dir.resolve("policy.yaml"), policy);
            Files.writeString(dir.resolve("config.yaml"), """
                    policy: policy.yaml
                    identity: {provider: dev}
                    issuer: {provider: vault, vault: {address: "%s", timeout: 10s}}
                    delivery: {mode: tmpfs, path: %s}
                    audit: {file: audit.jsonl}
                    ops: {listen: "127.0.0.1:%d"}
                    admin: {socket: %s}
                    """.formatted(vault.address(), dir.resolve("keys"), port, dir.resolve("admin.sock")));
            try (Daemon d = Daemon.start(Map.of("KEYWARDEN_LOG_LEVEL", "WARN"), "run", "--config",
                    dir.resolve("config.yaml").toString())) {
                d.awaitOut("serving tmpfs", 60);
                Thread.sleep(Math.min(SECONDS, 60) * 1000L / 4);
                long[] start = cpuTicksAndRssKb(d.pid());
                long t0 = System.nanoTime();
                long maxRss = start[1];
                long end = System.nanoTime() + SECONDS * 1_000_000_000L;
                while (System.nanoTime() < end) {
                    Thread.sleep(5000);
                    maxRss = Math.max(maxRss, cpuTicksAndRssKb(d.pid())[1]);
                }
                long[] stop = cpuTicksAndRssKb(d.pid());
                double wall = (System.nanoTime() - t0) / 1e9;
                double cpu = (stop[0] - start[0]) / 100.0;
                int live = vault.liveLeases().size();
                d.stop();
                String ledger = Files.readString(dir.resolve("audit.jsonl"));
                long issued = count(ledger, "key.issued");
                long refreshed = count(ledger, "key.refreshed");
                long expired = count(ledger, "key.expired");
                long failed = count(ledger, "issue.failed");
                System.out.printf("== scale: %d workloads x 1 key, TTL %ds, %ds measured (after warm-up), tmpfs delivery ==%n",
                        WORKLOADS, TTL, SECONDS);
                System.out.printf("issued %d, refreshed %d, vault reads %d (issuer calls per issuance %.3f)%n", issued, refreshed,
                        vault.reads.get(), vault.reads.get() / (double) (issued + refreshed));
                System.out.printf("expired keys (not refreshed in time): %d, issue failures: %d, live leases at the end: %d%n",
                        expired, failed, live);
                System.out.printf("vault logins %d, lease revokes %d, token revoke-self %d (tokens reused per workload while"
                        + " more than half their life remains; a replaced token is revoked once no lease is left under it)%n",
                        vault.logins.get(), vault.revokes.get(), vault.tokenRevokes.get());
                System.out.printf("daemon CPU: %.1f s over %.0f s = %.1f%% of one core; RSS max %d MB, at end %d MB%n", cpu,
                        wall, 100 * cpu / wall, maxRss / 1024, stop[1] / 1024);
            }
        } finally {
            Proc.run("sh", "-c", "grep -q '" + dir + "/keys' /proc/mounts && umount -l '" + dir + "/keys'; rm -rf '" + dir + "'");
        }
    }

    static long count(String ledger, String event) {
        return ledger.lines().filter(l -> l.contains("\"event\":\"" + event + "\"")).count();
    }
}
