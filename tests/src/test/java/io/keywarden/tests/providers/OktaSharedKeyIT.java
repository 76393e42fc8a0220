package io.keywarden.tests.providers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Http;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Okta {@code private_key_jwt} across a fleet: one Okta app has one JWKS, configured once from
 * {@code keywarden jwks --key FILE}; two daemons (two nodes) and a restarted one sign with the key
 * file they share and are accepted, a rotation publishes two keys and signs with the new one, and
 * a daemon with a key Okta does not know is refused (the stub verifies every signature).
 */
class OktaSharedKeyIT {
    static final String ALICE = "spiffe://example.org/ns/agents/sa/alice";
    static final ObjectMapper JSON = new ObjectMapper();

    Path dir;
    final List<Daemon> daemons = new ArrayList<>();
    final List<Path> mounts = new ArrayList<>();
    final Map<String, Integer> opsPorts = new java.util.HashMap<>();

    @BeforeEach
    void workspace() throws Exception {
        Requirements.rootAndFuse();
        dir = Files.createTempDirectory("kw-okta-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    @AfterEach
    void cleanUp() {
        daemons.forEach(Daemon::close);
        for (Path m : mounts) {
            Proc.run("sh", "-c", "grep -q ' " + m + " ' /proc/mounts && umount -l '" + m + "'");
        }
        Proc.run("rm", "-rf", dir.toString());
    }

    /** A key file made by openssl (PEM: PRIVATE KEY then PUBLIC KEY). */
    Path opensslKey(String name) {
        Path k = dir.resolve(name);
        Proc.Result r = Proc.run("sh", "-c", "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '" + k
                + "' && openssl pkey -in '" + k + "' -pubout >> '" + k + "' && chmod 600 '" + k + "'");
        assertTrue(r.ok(), r.err());
        return k;
    }

    static String jwks(Path... keys) {
        List<String> args = new ArrayList<>(List.of("jwks"));
        for (Path k : keys) {
            args.add("--key");
            args.add(k.toString());
        }
        Proc.Result r = Daemon.cli(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        return r.out();
    }

    /** A node: dev identity, one Okta issuer signing with {@code keyFiles}; returns its mount. */
    Path node(String name, FakeProviders p, String keyFiles) throws Exception {
        Path home = Files.createDirectories(dir.resolve(name));
        Path mnt = home.resolve("mnt");
        Files.writeString(home.resolve("policy.yaml"), """
                keys:
                  gateway:
                    issuer: okta
                    params: {clientId: "0oa-{workload}"}
                workloads:
                  - {name: alice, spiffeId: "%s", selectors: [unix:uid:1001], keys: [gateway]}
                """.formatted(ALICE));
        Path config = Files.writeString(home.resolve("config.yaml"), """
                node: %s
                policy: policy.yaml
                identity: {provider: dev, audience: vault}
                issuers:
                  okta: {type: okta-client-credentials, url: "%s", scope: "llm:infer", signingKeyFile: %s}
                delivery: {mode: fuse, path: %s}
                audit: {file: audit.jsonl}
                ops: {listen: "127.0.0.1:%d"}
                admin: {socket: %s}
                """.formatted(name, p.url("/okta/oauth2/default/v1/token"), keyFiles, mnt, opsPorts.computeIfAbsent(name,
                n -> Ports.free()), home.resolve("admin/admin.sock")));
        Daemon d = Daemon.start(Map.of(), "run", "--config", config.toString());
        daemons.add(d);
        mounts.add(mnt);
        d.awaitOut("serving KeyFS", 30);
        return mnt;
    }

    static Proc.Result read(Path mnt) {
        return Proc.as(1001, "cat", mnt.resolve("gateway/api_key").toString());
    }

    @Test
    void twoNodesAndARestartSignWithTheSharedKeyAndARotationPublishesBoth() throws Exception {
        Path k1 = opensslKey("k1.pem");
        Path k2 = dir.resolve("k2.jwk");
        Proc.Result made = Daemon.cli("jwks", "--generate", k2.toString());
        assertEquals(0, made.code(), made.err());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(k2)), "a new key is 0600");
        assertFalse(made.out().contains("\"d\""), "the printed JWKS holds no private part");
        assertEquals(2, Daemon.cli("jwks", "--generate", k2.toString()).code(), "a key file is never overwritten");
        Path k3 = opensslKey("k3.pem");

        // Okta's app is configured once, with the JWKS printed from the key file (no node serves it).
        AtomicReference<String> published = new AtomicReference<>(jwks(k1));
        JsonNode one = JSON.readTree(published.get());
        assertEquals(1, one.path("keys").size());
        String kid1 = one.path("keys").get(0).path("kid").asText();
        assertFalse(published.get().contains("\"d\""), "public keys only");
        try (FakeProviders p = new FakeProviders(() -> "{\"keys\":[]}", "unused")
                .oktaApp("0oa-alice", published::get).start()) {
            Path a = node("node-a", p, k1.toString());
            Path b = node("node-b", p, k1.toString());
            String ta = read(a).out();
            String tb = read(b).out();
            assertTrue(ta.startsWith("eyJ") && tb.startsWith("eyJ"), "both nodes got a token: " + read(a).err());
            assertFalse(ta.equals(tb), "two tokens (compared without printing either)");
            assertEquals(2, p.tokensOf("okta", "0oa-alice").size());
            assertEquals(published.get().strip(), Http.get("http://127.0.0.1:" + opsPorts.get("node-a")
                    + "/.well-known/keywarden-client-jwks.json").strip(),
                    "a node serves the same JWKS as the command prints");

            // A restart signs with the same key: still accepted.
            daemons.get(0).stop();
            Proc.run("sh", "-c", "grep -q ' " + a + " ' /proc/mounts && umount -l '" + a + "'");
            Path again = node("node-a2", p, k1.toString());
            assertTrue(read(again).out().startsWith("eyJ"), "after a restart: " + read(again).err());

            // A key the app does not know is refused at Okta: the node serves no token.
            Path stranger = node("node-c", p, k3.toString());
            Proc.Result refused = read(stranger);
            assertFalse(refused.ok(), "an unknown signing key gets nothing");
            assertFalse(refused.out().startsWith("eyJ"));

            // Rotation: publish both, then sign with the new one first; the old order still works meanwhile.
            published.set(jwks(k1, k2));
            assertEquals(2, JSON.readTree(published.get()).path("keys").size());
            Path rotated = node("node-d", p, "[" + k2 + ", " + k1 + "]");
            assertTrue(read(rotated).out().startsWith("eyJ"), "signed with the new key: " + read(rotated).err());
            assertTrue(read(b).out().startsWith("eyJ"));
            String kid2 = JSON.readTree(jwks(k2)).path("keys").get(0).path("kid").asText();
            assertNotEquals(kid1, kid2);
            assertTrue(p.refusals.stream().anyMatch(r -> r.contains("signature")), "the stranger's refusal: " + p.refusals);
        }
    }

    @Test
    void aNodeWithoutASigningKeyFileIsRefusedAtStartWithTheWayToMakeOne() throws Exception {
        Path config = Files.writeString(dir.resolve("config.yaml"), """
                policy: policy.yaml
                identity: {provider: dev}
                issuers:
                  okta: {type: okta-client-credentials, url: "https://example.okta.com/oauth2/default/v1/token"}
                delivery: {mode: fuse, path: %s}
                """.formatted(dir.resolve("mnt")));
        Files.writeString(dir.resolve("policy.yaml"), "keys: {}\nworkloads: []\n");
        Proc.Result r = Daemon.cli("policy", "check", "--config", config.toString(), dir.resolve("policy.yaml").toString());
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("issuers.okta.signingKeyFile is required") && r.err().contains("keywarden jwks"), r.err());
        Path bad = Files.writeString(dir.resolve("bad.pem"), "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
        Proc.Result b = Daemon.cli("jwks", "--key", bad.toString());
        assertEquals(2, b.code());
        assertTrue(b.err().contains(bad.toString()) && b.err().contains("PRIVATE KEY"), b.err());
    }
}
