package io.keywarden.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.policy.yaml.Problem;
import io.keywarden.policy.yaml.ProblemsException;
import io.keywarden.policy.yaml.YamlReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Each class of bad policy, the position reported and the words of the message. */
class BadPolicyTest {
    private static final String KEY = "keys:\n  openai:\n    refreshAt: 0.5\n";
    private static final String WL = "workloads:\n  - name: a\n    spiffeId: spiffe://td/a\n    keys: [openai]\n";

    static Stream<Arguments> badPolicies() {
        return Stream.of(
            bad("unknown top-level key", KEY + WL + "extra: 1\n", "8:1", "unknown key 'extra' in the policy (expected one of: keys, workloads, idleRevoke)"),
            bad("unknown key in a key", "keys:\n  openai:\n    refresh: 0.5\n" + WL, "3:5", "unknown key 'refresh' in keys.openai"),
            bad("unknown key in vault", "keys:\n  openai:\n    vault: {role: r, path: p, lease: 1}\n" + WL, "3:31",
                    "unknown key 'lease' in keys.openai.vault"),
            bad("unknown key in a workload", KEY + WL + "    team: x\n", "8:5", "unknown key 'team' in workloads[0]"),
            bad("unknown key in readers", KEY + WL + "    readers: {pid: [1]}\n", "8:15", "unknown key 'pid' in workload 'a'.readers"),
            bad("keys missing", WL, "1:1", "missing required key 'keys'"),
            bad("workloads missing", KEY, "1:1", "missing required key 'workloads'"),
            bad("keys is a list", "keys: [openai]\n" + WL, "1:7", "keys must be a mapping, not a list"),
            bad("workloads is a mapping", KEY + "workloads: {a: 1}\n", "4:12", "workloads must be a list, not a mapping"),
            bad("refreshAt is a string", "keys:\n  openai:\n    refreshAt: soon\n" + WL, "3:16", "refreshAt must be a number between 0 and 1, not a string"),
            bad("refreshAt is 1", "keys:\n  openai:\n    refreshAt: 1\n" + WL, "3:16", "strictly between 0 and 1, not 1"),
            bad("refreshAt is 0", "keys:\n  openai:\n    refreshAt: 0.0\n" + WL, "3:16", "strictly between 0 and 1, not 0.0"),
            bad("refreshAt negative", "keys:\n  openai:\n    refreshAt: -0.2\n" + WL, "3:16", "strictly between 0 and 1"),
            bad("bad duration", "keys:\n  openai:\n    grace: 60 seconds\n" + WL, "3:12", "'60 seconds' is not a duration"),
            bad("bad ISO duration", "keys:\n  openai:\n    grace: PT1X\n" + WL, "3:12", "not an ISO-8601 duration"),
            bad("zero idleRevoke", KEY + WL + "idleRevoke: 0s\n", "1:1", "idleRevoke must be greater than zero"),
            bad("duration is a number", "keys:\n  openai:\n    grace: 60\n" + WL, "3:12", "grace must be a string, not an integer"),
            bad("bad key name", "keys:\n  OpenAI:\n    refreshAt: 0.5\n" + WL.replace("[openai]", "[OpenAI]"), "2:3", "'OpenAI' is not a valid name"),
            bad("bad workload name", KEY + WL.replace("name: a", "name: -a"), "5:5", "'-a' is not a valid name"),
            bad("name too long", KEY + WL.replace("name: a", "name: " + "a".repeat(64)), "5:5", "is not a valid name"),
            bad("SPIFFE ID wrong scheme", KEY + WL.replace("spiffe://td/a", "https://td/a"), "6:15", "must start with spiffe://"),
            bad("SPIFFE ID upper-case trust domain", KEY + WL.replace("spiffe://td/a", "spiffe://TD/a"), "6:15", "lower case"),
            bad("SPIFFE ID trailing slash", KEY + WL.replace("spiffe://td/a", "spiffe://td/a/"), "6:15", "must not end with '/'"),
            bad("SPIFFE ID dot segment", KEY + WL.replace("spiffe://td/a", "spiffe://td/a/../b"), "6:15", "has a '..' segment"),
            bad("SPIFFE ID empty trust domain", KEY + WL.replace("spiffe://td/a", "spiffe:///a"), "6:15", "the trust domain is empty"),
            bad("SPIFFE ID missing", KEY + "workloads:\n  - name: a\n    keys: [openai]\n", "5:5", "missing required key 'spiffeId'"),
            bad("unknown selector", KEY + WL + "    selectors: [unix:user:bob]\n", "8:17", "unknown selector 'unix:user:bob'"),
            bad("selector uid not a number", KEY + WL + "    selectors: [unix:uid:bob]\n", "8:17", "must be a number"),
            bad("selector sha256 too short", KEY + WL + "    selectors: [unix:sha256:abc]\n", "8:17", "64 lower-case hex digits"),
            bad("selector relative path", KEY + WL + "    selectors: [unix:path:python3]\n", "8:17", "must be a canonical absolute path"),
            bad("selector pod uid malformed", KEY + WL + "    selectors: [k8s:pod-uid:1234]\n", "8:17", "must be a pod UID"),
            bad("selectors not a list", KEY + WL + "    selectors: unix:uid:1\n", "8:16", "selectors must be a list, not a string"),
            bad("duplicate workload names", KEY + WL + WL.substring("workloads:\n".length()).replace("td/a", "td/b"), "8:5",
                    "workload name 'a' is used twice (first at line 5)"),
            bad("duplicate SPIFFE IDs", KEY + WL + WL.substring("workloads:\n".length()).replace("name: a", "name: b"), "8:5",
                    "workload 'b' has the same spiffeId as workload 'a'"),
            bad("undefined key", KEY + WL.replace("[openai]", "[openai, anthropic]"), "7:20",
                    "workload 'a' names key 'anthropic', which is not defined under keys"),
            bad("key listed twice", KEY + WL.replace("[openai]", "[openai, openai]"), "7:20", "lists key 'openai' twice"),
            bad("readers uid is a string", KEY + WL + "    readers: {uid: [\"1001\"]}\n", "8:21", "uid entries must be numbers"),
            bad("readers exe relative", KEY + WL + "    readers: {exe: [bin/python]}\n", "8:21", "must be a canonical absolute path"),
            bad("readers exe with //", KEY + WL + "    readers: {exe: [/usr//bin/python]}\n", "8:21", "must be a canonical path"),
            bad("readers exe with ..", KEY + WL + "    readers: {exe: [/usr/bin/../bin/python]}\n", "8:21", "must be a canonical path"),
            bad("readers exe with an invisible character", KEY + WL + "    readers: {exe: [\"/usr/bin/pyth\\u200bon\"]}\n", "8:21",
                    "invisible or control character (U+200B)"),
            bad("readers exe with a control character", KEY + WL + "    readers: {exe: [\"/usr/bin/py\\e[2Jthon\"]}\n", "8:21",
                    "invisible or control character (U+001B)"),
            bad("readers uid with a leading zero", KEY + WL + "    readers: {uid: [01001]}\n", "8:21", "uid entries must be numbers"),
            bad("readers uid with a plus sign", KEY + WL + "    readers: {uid: [+1001]}\n", "8:21", "uid entries must be numbers"),
            bad("selector uid with non-ASCII digits", KEY + WL + "    selectors: [\"unix:uid:\\u0661\\u0660\"]\n", "8:17", "must be a number"),
            bad("selector uid with a leading zero", KEY + WL + "    selectors: [unix:uid:0100]\n", "8:17", "must be a number"),
            bad("selector path not canonical", KEY + WL + "    selectors: [\"unix:path:/usr/bin/./python\"]\n", "8:17",
                    "must be a canonical path"),
            bad("readers sha256 upper case", KEY + WL + "    readers: {sha256: [" + "A".repeat(64) + "]}\n", "8:24", "64 lower-case hex digits"),
            bad("vault without path", "keys:\n  openai:\n    vault: {role: r}\n" + WL, "3:12", "missing required key 'path'"),
            bad("vault path absolute", "keys:\n  openai:\n    vault: {role: r, path: /openai/creds/x}\n" + WL, "3:12", "is not a Vault path"),
            bad("vault path unknown placeholder", "keys:\n  openai:\n    vault: {role: r, path: \"openai/{team}\"}\n" + WL, "3:12",
                    "has an unknown placeholder '{team}'"),
            bad("empty keys", "keys: {}\n" + WL.replace("[openai]", "[]"), "1:7", "keys must define at least one key"),
            bad("duplicate mapping key", KEY + WL + "    keys: [openai]\n", "8:5", "duplicate key 'keys' (first at line 7)"),
            bad("policy is a list", "- keys\n- workloads\n", "1:1", "the policy must be a mapping, not a list"),
            bad("policy is a scalar", "hello\n", "1:1", "the policy must be a mapping, not a string"),
            bad("tab indentation", "keys:\n\topenai: {}\n" + WL, "2:1", "tab character in indentation"),
            bad("YAML syntax error", "keys: [openai\n" + WL, "", "YAML syntax error"),
            bad("anchor", "keys:\n  openai: &k\n    refreshAt: 0.5\n" + WL, "2:11", "YAML anchors (&k) are not allowed"),
            bad("alias", "keys:\n  openai: &k {refreshAt: 0.5}\n  other: *k\n" + WL, "3:10", "YAML aliases (*k) are not allowed"),
            bad("two documents", KEY + WL + "---\n" + KEY, "9:1", "only one YAML document is allowed"),
            bad("empty file", "", "1:1", "file is empty"),
            bad("only comments", "# nothing here\n", "1:1", "file is empty"));
    }

    private static Arguments bad(String what, String yaml, String position, String message) {
        return Arguments.of(what, yaml, position, message);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badPolicies")
    void rejected(String what, String yaml, String position, String message) {
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.parse(yaml, "p.yaml"));
        List<String> lines = e.problems().stream().map(Problem::format).toList();
        boolean found = lines.stream().anyMatch(l -> l.startsWith("p.yaml:" + position) && l.contains(message));
        assertTrue(found, what + ": expected p.yaml:" + position + "…" + message + " in " + lines);
        for (String l : lines) {
            assertTrue(l.chars().noneMatch(c -> c < 0x20 || c == 0x7f || Character.getType(c) == Character.FORMAT),
                    what + ": a message echoes a raw control or invisible character: " + l.replaceAll("\\p{Cntrl}", "?"));
        }
    }

    @Test
    void everyProblemIsReportedAtOnce() {
        String yaml = "keys:\n  Bad:\n    refreshAt: 2\n    colour: red\nworkloads:\n"
                + "  - name: a\n    spiffeId: nope\n    keys: [missing]\n    selectors: [what:ever]\n";
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.parse(yaml, "p.yaml"));
        assertEquals(List.of(
                "p.yaml:2:3: keys.Bad: 'Bad' is not a valid name: use 1-63 of a-z, 0-9, '_' or '-', starting with a letter or digit",
                "p.yaml:3:16: keys.Bad.refreshAt must be strictly between 0 and 1, not 2",
                "p.yaml:4:5: unknown key 'colour' in keys.Bad (expected one of: issuer, params, vault, refreshAt, grace)",
                "p.yaml:7:15: workload 'a'.spiffeId: 'nope' is not a SPIFFE ID: it must start with spiffe://",
                "p.yaml:8:12: workload 'a' names key 'missing', which is not defined under keys",
                "p.yaml:9:17: workload 'a'.selectors: unknown selector 'what:ever' (known: unix:uid:…, unix:gid:…, "
                        + "unix:path:…, unix:sha256:…, k8s:pod-uid:…, container:id:…)"),
                e.problems().stream().map(Problem::format).toList());
    }

    @Test
    void aliasBombIsRejectedWithoutExpansion() {
        StringBuilder b = new StringBuilder("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (char c = 'b'; c <= 'z'; c++) {
            char p = (char) (c - 1);
            b.append(c).append(": &").append(c).append(" [*").append(p).append(", *").append(p).append(", *").append(p)
                    .append(", *").append(p).append(", *").append(p).append(", *").append(p).append("]\n");
        }
        long start = System.nanoTime();
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.parse(b.toString(), "bomb.yaml"));
        assertTrue(System.nanoTime() - start < 5_000_000_000L, "took too long");
        assertTrue(e.problems().stream().anyMatch(p -> p.message().contains("anchors")), e.problems().toString());
    }

    @Test
    void hugeFileIsRejectedBeforeParsing(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("huge.yaml");
        byte[] content = ("# " + "x".repeat(YamlReader.MAX_BYTES) + "\n").getBytes(StandardCharsets.UTF_8);
        Files.write(f, content);
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.load(f, "huge.yaml"));
        assertEquals("huge.yaml:1:1: file is " + content.length + " bytes; the limit is 1048576",
                e.problems().get(0).format());
    }

    @Test
    void deepNestingIsBounded() {
        String yaml = "keys: " + "[".repeat(200) + "]".repeat(200) + "\n";
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.parse(yaml, "deep.yaml"));
        assertTrue(e.problems().get(0).message().contains("nested deeper than"), e.problems().toString());
    }

    @Test
    void invalidUtf8IsReported(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("bin.yaml");
        Files.write(f, new byte[] {'k', 'e', 'y', 's', ':', ' ', (byte) 0xff, (byte) 0xfe, '\n'});
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.load(f, "bin.yaml"));
        assertEquals("bin.yaml:1:1: file is not valid UTF-8", e.problems().get(0).format());
    }

    @Test
    void missingFileAndDirectoryAreReported(@TempDir Path dir) {
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.load(dir.resolve("nope.yaml"), "nope.yaml"));
        assertEquals("nope.yaml:1:1: no such file", e.problems().get(0).format());
        e = assertThrows(ProblemsException.class, () -> PolicyLoader.load(dir, "dir"));
        assertEquals("dir:1:1: is a directory, not a file", e.problems().get(0).format());
    }

    @Test
    void paramsAndIssuerAreCheckedWhereTheyAreWritten() {
        String yaml = """
                keys:
                  openai:
                    issuer: Bad_Name
                    params: {project: "{workload.params.project}", region: "{region}", 9x: y, ok: [1]}
                    vault: {role: "{workload", path: "openai/creds/{workload.params.sa}"}
                workloads:
                  - name: reviewer
                    spiffeId: spiffe://example.org/reviewer
                    keys: [openai]
                    params: {project: "p1", bad-name: x}
                """;
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.parse(yaml, "p.yaml"));
        List<String> got = e.problems().stream().map(Problem::format).toList();
        assertTrue(got.contains("p.yaml:3:5: keys.openai.issuer: 'Bad_Name' is not a valid name: use 1-63 of a-z, 0-9,"
                + " '_' or '-', starting with a letter or digit"), got.toString());
        assertTrue(got.contains("p.yaml:4:60: keys.openai.params.region '{region}' has an unknown placeholder '{region}'"
                + " (use {workload} or {workload.params.NAME})"), got.toString());
        assertTrue(got.stream().anyMatch(m -> m.contains("keys.openai.params: '9x' is not a parameter name")), got.toString());
        assertTrue(got.stream().anyMatch(m -> m.contains("keys.openai.params.ok must be a string")), got.toString());
        assertTrue(got.stream().anyMatch(m -> m.contains("keys.openai.vault.role has an unbalanced")), got.toString());
        assertTrue(got.stream().anyMatch(m -> m.contains("workload 'reviewer'.params: 'bad-name' is not a parameter name")),
                got.toString());
        assertTrue(got.contains("p.yaml:7:5: workload 'reviewer' has no params.sa, which key 'openai' uses"), got.toString());
    }

    @Test
    void anExpandedVaultPathIsCheckedForEveryWorkload() {
        String yaml = """
                keys:
                  openai: {vault: {role: r, path: "openai/creds/{workload.params.sa}"}}
                workloads:
                  - name: reviewer
                    spiffeId: spiffe://example.org/reviewer
                    keys: [openai]
                    params: {sa: "../../sys/raw"}
                """;
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.parse(yaml, "p.yaml"));
        assertEquals(List.of("p.yaml:4:5: keys.openai.vault.path for workload 'reviewer' 'openai/creds/../../sys/raw' is"
                + " not a Vault path: relative, no '..', '//', '?', '#', spaces or placeholders other than {workload} and"
                + " {workload.params.NAME}"), e.problems().stream().map(Problem::format).toList());
    }
}
