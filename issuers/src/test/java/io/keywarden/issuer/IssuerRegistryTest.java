package io.keywarden.issuer;

import io.keywarden.issuer.dev.DevIssuer;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.keywarden.issuer.IssuerSpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.yaml.Problem;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class IssuerRegistryTest {
    private static final IssuerSpec BAO = new io.keywarden.issuer.vault.VaultType.Spec("bao", null, "vault");
    private static final IssuerSpec DEV = new io.keywarden.issuer.dev.DevType.Spec("dev", Duration.ofMinutes(5));

    private static Policy policy(String keys) throws Exception {
        return PolicyLoader.parse("keys:\n" + keys + "workloads: []\n", "p.yaml");
    }

    private static Map<String, IssuerSpec> instances(IssuerSpec... specs) {
        Map<String, IssuerSpec> m = new LinkedHashMap<>();
        for (IssuerSpec s : specs) {
            m.put(s.name(), s);
        }
        return m;
    }

    private static List<String> check(Map<String, IssuerSpec> i, Policy p) {
        return IssuerRegistry.check(i, p).stream().map(Problem::format).toList();
    }

    @Test
    void aKeyWithoutIssuerUsesTheOnlyInstance() throws Exception {
        Policy p = policy("  openai: {vault: {role: r, path: openai/creds/r}}\n");
        assertEquals(List.of(), check(instances(BAO), p));
        assertEquals(List.of("p.yaml:2:3: keys.openai: name its issuer ('issuer:', one of bao, dev): the config has 2"),
                check(instances(BAO, DEV), p));
    }

    @Test
    void eachTypeChecksItsOwnParams() throws Exception {
        Policy p = policy("""
                  a: {issuer: bao}
                  b: {issuer: bao, params: {x: y}, vault: {role: r, path: p}}
                  c: {issuer: dev, params: {anything: "{workload}"}}
                  d: {issuer: gone}
                """);
        assertEquals(List.of("p.yaml:2:3: keys.a: 'vault' is required for a key of issuer 'bao' (type vault)",
                "p.yaml:3:3: keys.b.params: a key of issuer 'bao' (type vault) takes its parameters in 'vault:', not"
                        + " 'params:'",
                "p.yaml:5:3: keys.d.issuer: 'gone' is not an issuer instance of the config (bao, dev)"),
                check(instances(BAO, DEV), p));
    }

    @Test
    void forKeyAndNamedResolveInstances() throws Exception {
        DevIssuer dev = new DevIssuer("dev", Duration.ofMinutes(5), Clock.systemUTC());
        DevIssuer other = new DevIssuer("other", Duration.ofMinutes(5), Clock.systemUTC());
        IssuerRegistry r = new IssuerRegistry(Map.of(), new LinkedHashMap<>(Map.of("dev", dev, "other", other)));
        Policy p = policy("  a: {issuer: other}\n  b: {}\n  c: {issuer: gone}\n");
        assertSame(other, r.forKey(p.keys().get("a")));
        IssuerException noName = assertThrows(IssuerException.class, () -> r.forKey(p.keys().get("b")));
        assertEquals(IssuerException.Kind.CONFIG, noName.kind());
        IssuerException gone = assertThrows(IssuerException.class, () -> r.forKey(p.keys().get("c")));
        assertEquals(IssuerException.Kind.CONFIG, gone.kind());
        assertSame(dev, r.named("dev").orElseThrow());
        assertSame(dev, IssuerRegistry.single(dev).forKey(p.keys().get("b")));
    }

    @Test
    void httpStatusDecidesKindAndRetry() {
        assertEquals(IssuerException.Kind.UNREACHABLE, IssuerException.http("x", 0).kind());
        assertEquals(true, IssuerException.http("x", 0).retryable());
        assertEquals(IssuerException.Kind.REFUSED, IssuerException.http("x", 403).kind());
        assertEquals(false, IssuerException.http("x", 403).retryable());
        assertEquals(true, IssuerException.http("x", 429).retryable(), "rate limited: back off and retry");
        assertEquals(IssuerException.Kind.SERVER_ERROR, IssuerException.http("x", 503).kind());
        assertEquals(503, IssuerException.http("x", 503).httpStatus());
    }
}
