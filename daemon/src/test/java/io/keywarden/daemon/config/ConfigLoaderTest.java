package io.keywarden.daemon.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.daemon.runtime.Tuning;
import io.keywarden.daemon.runtime.IdentitySettings;
import io.keywarden.daemon.runtime.DeliveryMode;
import io.keywarden.daemon.ops.MetricsExport;
import io.keywarden.daemon.net.HostPort;
import io.keywarden.daemon.gateway.GatewaySettings;
import io.keywarden.daemon.fleet.FleetSettings;
import io.keywarden.policy.yaml.Problem;
import io.keywarden.policy.yaml.ProblemsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ConfigLoaderTest {
    @TempDir
    Path dir;

    private Path write(String yaml) throws Exception {
        Path f = dir.resolve("config.yaml");
        Files.writeString(f, yaml);
        return f;
    }

    @Test
    void exampleLoadsWithEveryField() throws Exception {
        Config c = ConfigLoader.load(Path.of("../deploy/examples/config.yaml"), Map.of());
        assertEquals("node-a", c.node());
        assertEquals(IdentitySettings.Provider.SPIRE, c.identity().provider());
        assertEquals(Path.of("/run/spire/admin/admin.sock"), c.identity().spireAdminSocket());
        io.keywarden.issuer.vault.VaultType.Spec bao = (io.keywarden.issuer.vault.VaultType.Spec) c.issuers().get("bao");
        assertEquals("https://openbao.example:8200", bao.connection().address().toString());
        assertEquals(Duration.ofSeconds(10), bao.connection().timeout());
        assertEquals("vault", bao.audience());
        assertEquals(Tuning.DEFAULT, c.tuning());
        assertEquals(new HostPort("127.0.0.1", 9464), c.ops().listen());
        assertTrue(c.revokeOnShutdown());
        assertEquals(Path.of("/run/keywarden-admin/handover.sock"), c.admin().handoverSocket());
        GatewaySettings g = c.extensions().gateway().orElseThrow();
        assertEquals(new HostPort("127.0.0.1", 8787), g.listen().orElseThrow());
        assertEquals(Path.of("/run/keywarden-gw/gateway.sock"), g.socket().orElseThrow());
        assertEquals(new GatewaySettings.Upstream(java.net.URI.create("https://api.openai.com"), GatewaySettings.UpstreamAuth.BEARER),
                g.upstreams().get("openai"));
        assertEquals(4L << 20, g.maxBodyBytes());
        assertEquals(GatewaySettings.Limits.DEFAULT, g.limits(), "the example spells out the defaults");
        assertEquals(new MetricsExport.StatsD("127.0.0.1", 8125, "datadog"), c.extensions().metrics().statsd().orElseThrow());
    }

    @Test
    void aFleetIsReadAndItsMistakesNamed() throws Exception {
        Config c = ConfigLoader.load(write("""
                policy: p
                issuers: {d: {type: dev}}
                fleet: {redis: "rediss://redis.kw.svc:6380", user: keywarden, onUnavailable: closed, keyPrefix: "prod:"}
                """), Map.of());
        FleetSettings f = c.extensions().fleet().orElseThrow();
        assertEquals("rediss://redis.kw.svc:6380", f.redis().toString());
        assertEquals(java.util.Optional.of("keywarden"), f.user());
        assertEquals(FleetSettings.Unavailable.CLOSED, f.onUnavailable());
        assertEquals("prod:", f.keyPrefix());
        io.keywarden.policy.yaml.ProblemsException e = org.junit.jupiter.api.Assertions.assertThrows(
                io.keywarden.policy.yaml.ProblemsException.class, () -> ConfigLoader.load(write("""
                        policy: p
                        issuers: {d: {type: dev}}
                        fleet: {redis: "redis://u:secret@h:6379", keyPrefix: "a{b}", onUnavailable: maybe,
                                caFile: /nonexistent/redis-ca.crt}
                        """), Map.of()));
        String all = e.problems().stream().map(io.keywarden.policy.yaml.Problem::format)
                .collect(java.util.stream.Collectors.joining("\n"));
        assertTrue(all.contains("put no credentials in the URL"), all);
        assertTrue(all.contains("fleet.keyPrefix must hold no braces"), all);
        assertTrue(all.contains("fleet.onUnavailable"), all);
        assertTrue(all.contains("fleet.caFile"), all);
        org.junit.jupiter.api.Assertions.assertFalse(all.contains("secret"), "the password in the URL is not echoed");
    }

    @Test
    void aFleetOnSentinelOrClusterIsReadAndItsMistakesNamed() throws Exception {
        FleetSettings s = ConfigLoader.load(write("""
                policy: p
                issuers: {d: {type: dev}}
                fleet: {redis: {sentinel: ["redis://s1:26379", "redis://s2:26379"], master: kw}}
                """), Map.of()).extensions().fleet().orElseThrow();
        assertEquals(FleetSettings.RedisKind.SENTINEL, s.redis().kind());
        assertEquals(2, s.redis().endpoints().size());
        assertEquals(java.util.Optional.of("kw"), s.redis().master());
        FleetSettings c = ConfigLoader.load(write("""
                policy: p
                issuers: {d: {type: dev}}
                fleet:
                  redis:
                    cluster: ["rediss://a:7000", "rediss://b:7000", "rediss://c:7000"]
                """), Map.of()).extensions().fleet().orElseThrow();
        assertEquals(FleetSettings.RedisKind.CLUSTER, c.redis().kind());
        assertEquals("cluster [rediss://a:7000, rediss://b:7000, rediss://c:7000]", c.redis().toString());
        for (String[] bad : new String[][] {
                {"{sentinel: [\"redis://s1:26379\"]}", "needs 'master'"},
                {"{sentinel: [\"redis://s:1\"], cluster: [\"redis://c:1\"], master: m}", "either 'sentinel'"},
                {"{cluster: []}", "non-empty list of redis:// URLs"},
                {"{cluster: [\"http://c:1\", \"redis://p:secret@c:2\"]}", "must be redis://HOST:PORT"},
                {"{cluster: \"redis://c:1\"}", "non-empty list"},
                {"[redis://a:1]", "must be a redis:// URL, {sentinel"},
                {"{cluster: [\"redis://c:1\"], tls: yes}", "tls"}}) {
            io.keywarden.policy.yaml.ProblemsException e = org.junit.jupiter.api.Assertions.assertThrows(
                    io.keywarden.policy.yaml.ProblemsException.class, () -> ConfigLoader.load(write("""
                            policy: p
                            issuers: {d: {type: dev}}
                            fleet: {redis: %s}
                            """.formatted(bad[0])), Map.of()), bad[0]);
            String all = e.problems().stream().map(io.keywarden.policy.yaml.Problem::format)
                    .collect(java.util.stream.Collectors.joining("\n"));
            assertTrue(all.contains(bad[1]), bad[0] + " -> " + all);
            org.junit.jupiter.api.Assertions.assertFalse(all.contains("secret"), "no password echoed: " + all);
        }
    }

    @Test
    void gatewayLimitsAreReadAndBadOnesNamed() throws Exception {
        Config c = ConfigLoader.load(write("""
                policy: p
                issuers: {d: {type: dev}}
                gateway: {listen: 127.0.0.1:8787, maxConnectionsPerUid: 8, idleTimeout: 5s, maxBufferedBytes: 32MiB,
                          defaultMaxOutputTokens: 256}
                """), Map.of());
        GatewaySettings.Limits l = c.extensions().gateway().orElseThrow().limits();
        assertEquals(8, l.maxConnectionsPerUid());
        org.junit.jupiter.api.Assertions.assertTrue(c.extensions().gateway().orElseThrow().upstreams().isEmpty());
        assertEquals(Duration.ofSeconds(5), l.idleTimeout());
        assertEquals(32L << 20, l.maxBufferedBytes());
        assertEquals(256, l.defaultMaxOutputTokens());
        assertEquals(1024, l.maxConnections());
        assertTrue(c.extensions().gateway().orElseThrow().socketRelay(), "the Unix socket is relayed by default");
        assertFalse(ConfigLoader.load(write("""
                policy: p
                issuers: {d: {type: dev}}
                gateway: {socket: /run/kw-gw/gateway.sock, socketRelay: false}
                """), Map.of()).extensions().gateway().orElseThrow().socketRelay());
        io.keywarden.policy.yaml.ProblemsException e = org.junit.jupiter.api.Assertions.assertThrows(
                io.keywarden.policy.yaml.ProblemsException.class, () -> ConfigLoader.load(write("""
                        policy: p
                        issuers: {d: {type: dev}}
                        gateway: {listen: 127.0.0.1:8787, maxConnectionsPerUid: 0, maxConnections: "many",
                                  maxBufferedBytes: 1KiB}
                        """), Map.of()));
        String all = e.problems().stream().map(io.keywarden.policy.yaml.Problem::format)
                .collect(java.util.stream.Collectors.joining("\n"));
        assertTrue(all.contains("gateway.maxConnectionsPerUid must be between 1 and 100000"), all);
        assertTrue(all.contains("gateway.maxConnections must be a whole number"), all);
        assertTrue(all.contains("gateway.maxBufferedBytes must be at least gateway.maxBodyBytes"), all);
    }

    @Test
    void theHandoverSocketDefaultsBesideTheAdminSocketAndMustBeAbsolute() throws Exception {
        Config c = ConfigLoader.load(write("""
                policy: p
                issuers: {d: {type: dev}}
                admin: {socket: /run/kw/admin.sock}
                """), Map.of());
        assertEquals(Path.of("/run/kw/handover.sock"), c.admin().handoverSocket());
        io.keywarden.policy.yaml.ProblemsException e = org.junit.jupiter.api.Assertions.assertThrows(
                io.keywarden.policy.yaml.ProblemsException.class, () -> ConfigLoader.load(write("""
                        policy: p
                        issuers: {d: {type: dev}}
                        admin: {socket: /run/kw/admin.sock, handoverSocket: relative.sock}
                        """), Map.of()));
        assertTrue(e.getMessage().contains("admin.handoverSocket"), e.getMessage());
    }

    @Test
    void gatewayUsageHookAndMetricsSectionsAreCheckedStrictly() throws Exception {
        Files.writeString(dir.resolve("admin.key"), "sk-admin-x\n");
        Config c = ConfigLoader.load(write("""
                policy: p
                issuers: {d: {type: dev}}
                gateway:
                  socket: /run/gw.sock
                  upstreams: {anthropic: {url: "https://api.anthropic.com", auth: x-api-key}}
                usage: {openai: {adminKeyFile: admin.key, interval: 30s}}
                policyHook: {opa: {url: "http://127.0.0.1:8181/v1/data/keywarden/allow"}}
                metrics: {otlp: {}, step: 5s}
                """), Map.of());
        assertEquals(GatewaySettings.UpstreamAuth.X_API_KEY, c.extensions().gateway().orElseThrow().upstreams().get("anthropic").auth());
        assertEquals(dir.resolve("admin.key"), c.extensions().usage().orElseThrow().adminKeyFile());
        assertEquals(java.net.URI.create("https://api.openai.com/v1"), c.extensions().usage().orElseThrow().url());
        assertEquals(Duration.ofMillis(200), c.extensions().policyHook().orElseThrow().timeout());
        assertTrue(c.extensions().policyHook().orElseThrow().failClosed());
        assertEquals("http://127.0.0.1:4318/v1/metrics", c.extensions().metrics().otlp().orElseThrow().toString());
        ProblemsException e = assertThrows(ProblemsException.class, () -> ConfigLoader.load(write("""
                policy: p
                issuers: {d: {type: dev}}
                gateway: {listen: "0.0.0.0:8787", upstreams: {openai: "ftp://x", b: {url: "https://x", auth: basic}}}
                usage: {openai: {adminKeyFile: missing.key}}
                policyHook: {opa: {timeout: 1h}}
                metrics: {statsd: {flavor: graphite}}
                """), Map.of()));
        String all = e.problems().stream().map(io.keywarden.policy.yaml.Problem::format)
                .collect(java.util.stream.Collectors.joining("\n"));
        assertTrue(all.contains("gateway.listen 0.0.0.0:8787 is not a loopback address"), all);
        assertTrue(all.contains("gateway.upstreams.openai: 'ftp://x' must be an http:// or https:// URL"), all);
        assertTrue(all.contains("gateway.upstreams.b.auth: 'basic' is not one of bearer | x-api-key | api-key"), all);
        assertTrue(all.contains("usage.openai.adminKeyFile: " + dir.resolve("missing.key") + " is not a file"), all);
        assertTrue(all.contains("policyHook.opa: missing required key 'url'"), all);
        assertTrue(all.contains("metrics.statsd.flavor 'graphite' is not one of datadog | etsy | telegraf"), all);
    }

    @Test
    void defaultsAndNodeFromEnvironment() throws Exception {
        Config c = ConfigLoader.load(write("policy: policy.yaml\nissuer: {provider: dev}\n"), Map.of("NODE_NAME", "n7"));
        assertEquals("n7", c.node());
        assertEquals(dir.resolve("policy.yaml"), c.policy());
        assertEquals(DeliveryMode.FUSE, c.delivery().mode());
        assertEquals(Path.of("/run/keywarden"), c.delivery().path());
        assertEquals("vault", c.identity().audience());
    }

    @Test
    void namedInstancesKeepTheirOrderAndTheirSettings() throws Exception {
        Config c = ConfigLoader.load(write("""
                policy: p
                identity: {provider: dev, audience: kw}
                issuers:
                  bao: {type: vault, address: 'http://127.0.0.1:8200', authMount: auth-x/jwt}
                  bao2: {type: vault, address: 'https://bao.example', audience: other}
                  scratch: {type: dev, ttl: 90s}
                tuning: {fuseWorkers: 2, openTimeout: 3s, fuseIoUring: false}
                """), Map.of());
        assertEquals(List.of("bao", "bao2", "scratch"), List.copyOf(c.issuers().keySet()));
        io.keywarden.issuer.vault.VaultType.Spec bao = (io.keywarden.issuer.vault.VaultType.Spec) c.issuers().get("bao");
        assertEquals("kw", bao.audience(), "an instance's audience defaults to identity.audience");
        assertEquals("auth-x/jwt", bao.connection().authMount());
        assertEquals("other", ((io.keywarden.issuer.vault.VaultType.Spec) c.issuers().get("bao2")).audience());
        assertEquals(Duration.ofSeconds(90), ((io.keywarden.issuer.dev.DevType.Spec) c.issuers().get("scratch")).ttl());
        assertEquals(2, c.tuning().fuseWorkers());
        assertEquals(Duration.ofSeconds(3), c.tuning().openTimeout());
        assertEquals(Tuning.DEFAULT.issuerThreads(), c.tuning().issuerThreads());
        assertFalse(c.tuning().fuseIoUring());
        assertTrue(Tuning.DEFAULT.fuseIoUring(), "io_uring where the kernel offers it, by default");
        // The older single form: one instance named after its provider.
        Config old = ConfigLoader.load(write("policy: p\nissuer: {provider: vault, vault: {address: 'http://x'}}\n"),
                Map.of());
        assertEquals(List.of("vault"), List.copyOf(old.issuers().keySet()));
        assertEquals("vault", old.issuers().get("vault").type());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "unknown key       | policy: p\\nissuer: {provider: dev}\\ncolor: red\\n | 3:1: unknown key 'color' in the config",
        "missing policy    | issuer: {provider: dev}\\n | 1:1: the config: missing required key 'policy'",
        "bad provider      | policy: p\\nissuer: {provider: aws}\\n | 2:20: issuer.provider: 'aws' is not one of vault | dev",
        "vault no block    | policy: p\\nissuer: {provider: vault}\\n | 2:9: issuer.vault is required when issuer.provider is vault",
        "vault bad url     | policy: p\\nissuer: {provider: vault, vault: {address: 'ftp://x'}}\\n | 2:44: issuer.vault.address: 'ftp://x' must be an http",
        "bad timeout       | policy: p\\nissuer: {provider: vault, vault: {address: 'http://x', timeout: soon}}\\n | 2:65: issuer.vault.timeout: 'soon' is not a duration",
        "missing ca file   | policy: p\\nissuer: {provider: vault, vault: {address: 'http://x', caFile: /nope.pem}}\\n | 2:64: issuer.vault.caFile: /nope.pem is not a file",
        "bad listen        | policy: p\\nissuer: {provider: dev}\\nops: {listen: 'localhost'}\\n | 3:15: ops.listen: 'localhost' is not HOST:PORT",
        "bad port          | policy: p\\nissuer: {provider: dev}\\nops: {listen: '127.0.0.1:99999'}\\n | 3:15: the port must be 0-65535",
        "relative mount    | policy: p\\nissuer: {provider: dev}\\ndelivery: {path: run/kw}\\n | 3:18: delivery.path 'run/kw' must be an absolute path",
        "bad delivery mode | policy: p\\nissuer: {provider: dev}\\ndelivery: {mode: nfs}\\n | 3:18: delivery.mode: 'nfs' is not one of fuse | tmpfs",
        "boolean as string | policy: p\\nissuer: {provider: dev}\\nrevokeOnShutdown: 'yes'\\n | 3:19: revokeOnShutdown must be true or false",
        "unknown nested    | policy: p\\nissuer: {provider: dev}\\nidentity: {spire: {socket: x}}\\n | 3:20: unknown key 'socket' in identity.spire",
        "not a mapping     | - a\\n | 1:1: the config must be a mapping, not a list",
        "no issuers        | policy: p\\n | 1:1: the config: missing required key 'issuers'",
        "both issuer forms | policy: p\\nissuer: {provider: dev}\\nissuers: {d: {type: dev}}\\n | 2:9: the config has both 'issuer' and 'issuers'",
        "empty issuers     | policy: p\\nissuers: {}\\n | 2:10: issuers must name at least one issuer instance",
        "bad instance name | policy: p\\nissuers: {Bao: {type: dev}}\\n | 2:11: issuers.Bao: 'Bao' is not a valid instance name",
        "unknown type      | policy: p\\nissuers: {x: {type: openai}}\\n | 2:14: issuers.x.type: 'openai' is not a known issuer type",
        "missing type      | policy: p\\nissuers: {x: {ttl: 1m}}\\n | 2:14: issuers.x: missing required key 'type'",
        "vault instance url| policy: p\\nissuers: {bao: {type: vault}}\\n | 2:16: issuers.bao: missing required key 'address'",
        "dev ttl too short | policy: p\\nissuers: {d: {type: dev, ttl: 1s}}\\n | 2:14: issuers.d.ttl must be between 10s and 24h",
        "unknown in vault  | policy: p\\nissuers: {bao: {type: vault, address: 'http://x', color: red}}\\n | 2:51: unknown key 'color' in issuers.bao",
        "tuning threads    | policy: p\\nissuers: {d: {type: dev}}\\ntuning: {issuerThreads: 0}\\n | 3:25: tuning.issuerThreads must be a whole number from 1 to 256",
        "tuning timeout    | policy: p\\nissuers: {d: {type: dev}}\\ntuning: {openTimeout: 1h}\\n | 3:9: tuning.openTimeout must be between 1s and 5m",
    })
    void rejected(String what, String yaml, String expected) throws Exception {
        Path f = write(yaml.replace("\\n", "\n"));
        ProblemsException e = assertThrows(ProblemsException.class, () -> ConfigLoader.load(f, Map.of()));
        List<String> lines = e.problems().stream().map(Problem::format).toList();
        assertTrue(lines.stream().anyMatch(l -> l.startsWith(f + ":" + expected.substring(0, expected.indexOf(' ')))
                && l.contains(expected.substring(expected.indexOf(' ') + 1))), what + ": " + lines);
    }

    @Test
    void hostPortForms() {
        assertEquals(new HostPort("::1", 80), HostPort.parse("[::1]:80"));
        assertEquals("[::1]:80", HostPort.parse("[::1]:80").toString());
        assertThrows(IllegalArgumentException.class, () -> HostPort.parse("::1:80"));
    }
}
