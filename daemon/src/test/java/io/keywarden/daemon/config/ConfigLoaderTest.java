package io.keywarden.daemon.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
        assertEquals(Config.IdentityProvider.SPIRE, c.identity().provider());
        assertEquals(Path.of("/run/spire/admin/admin.sock"), c.identity().spireAdminSocket());
        assertEquals("https://openbao.example:8200", c.issuer().vault().orElseThrow().address().toString());
        assertEquals(Duration.ofSeconds(10), c.issuer().vault().orElseThrow().timeout());
        assertEquals(new HostPort("127.0.0.1", 9464), c.ops().listen());
        assertTrue(c.revokeOnShutdown());
    }

    @Test
    void defaultsAndNodeFromEnvironment() throws Exception {
        Config c = ConfigLoader.load(write("policy: policy.yaml\nissuer: {provider: dev}\n"), Map.of("NODE_NAME", "n7"));
        assertEquals("n7", c.node());
        assertEquals(dir.resolve("policy.yaml"), c.policy());
        assertEquals(Config.DeliveryMode.FUSE, c.delivery().mode());
        assertEquals(Path.of("/run/keywarden"), c.delivery().path());
        assertEquals("vault", c.identity().audience());
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
