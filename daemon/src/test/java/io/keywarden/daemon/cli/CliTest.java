package io.keywarden.daemon.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.daemon.Main;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CliTest {
    record Result(int code, String out, String err) {
    }

    static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(args, new PrintWriter(out, true), new PrintWriter(err, true));
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void version() {
        Result r = run("version");
        assertEquals(0, r.code());
        assertTrue(r.out().startsWith("keywarden "), r.out());
    }

    @Test
    void aMistypedCommandIsBadInputWithASuggestionAndOnePrefix() {
        Result top = run("stauts");
        assertEquals(2, top.code());
        assertTrue(top.err().startsWith("keywarden: Unmatched argument") && top.err().contains("Did you mean: keywarden status"),
                top.err());
        Result sub = run("audit", "shwo");
        assertTrue(sub.err().startsWith("keywarden audit: ") && sub.err().contains("Did you mean: keywarden audit show?"),
                sub.err());
        Result opt = run("status", "--bogus");
        assertTrue(opt.err().startsWith("keywarden status: Unknown option: '--bogus'"), opt.err());
        assertTrue(opt.err().contains("Try 'keywarden status --help'."), opt.err());
    }

    @Test
    void helpNamesACommandAndAnUnreachableDaemonIsARuntimeFailure(@TempDir Path dir) {
        Result help = run("help", "revoke");
        assertEquals(0, help.code(), help.err());
        assertTrue(help.out().contains("--spiffe-id"), help.out());
        Result r = run("status", "--admin-socket", dir.resolve("none.sock").toString());
        assertEquals(3, r.code(), "the daemon is not there: a runtime failure, not bad input");
        assertEquals(1, r.err().trim().lines().count(), r.err());
        assertTrue(r.err().contains("no daemon admin socket at"), r.err());
        assertTrue(!r.err().contains("Exception"), "no class names: " + r.err());
    }

    @Test
    void auditShowFiltersAndRefusesATamperedLedger(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("audit.jsonl");
        try (io.keywarden.daemon.audit.Ledger l = io.keywarden.daemon.audit.Ledger.open(f, "n",
                java.time.Clock.systemUTC(), Long.MAX_VALUE, java.time.Duration.ZERO, null)) {
            l.append("key.issued", java.util.Map.of("workload", "alice", "key", "openai", "fingerprint", "sha256:aaaa",
                    "provider_key_id", "key_alice"));
            l.append("key.issued", java.util.Map.of("workload", "bob", "key", "openai", "fingerprint", "sha256:bbbb"));
            l.append("key.issued", java.util.Map.of("workload", "bob", "key", "openai", "fingerprint", "sha256:bbbb",
                    "spiffe_id", "spiffe://t/bob"));
            l.append("access.granted", java.util.Map.of("pid", 4242, "uid", 1001, "key", "openai"));
            // An access record of an older build: no workload field, the SPIFFE ID ties it to alice.
            l.append("access.granted", java.util.Map.of("pid", 4343, "uid", 1001, "key", "openai", "spiffe_id",
                    "spiffe://t/alice", "reason", "workload alice opened api_key"));
            l.append("key.issued", java.util.Map.of("workload", "alice", "key", "openai", "fingerprint", "sha256:a2",
                    "spiffe_id", "spiffe://t/alice"));
            l.append("access.denied", java.util.Map.of("uid", 1002, "exe", "/usr/bin/curl", "key", "openai", "code",
                    "unidentified", "repeats", 41, "reason", "no workload's selectors match"));
            l.append("guard.breach", java.util.Map.of("workload", "alice", "kind", "tokens_per_hour", "limit", 1000,
                    "observed", 1250, "action", "block"));
            l.append("admin.block", java.util.Map.of("workload", "alice", "operator", "uid 0", "reason", "runaway"));
        }
        Result alice = run("audit", "show", f.toString(), "--workload", "alice");
        assertEquals(0, alice.code(), alice.err());
        assertTrue(alice.out().contains("key_alice") && !alice.out().contains("sha256:bbbb"), alice.out());
        // Every record of alice's, her accesses included, with each event's own fields.
        assertTrue(alice.out().contains("pid=4343"), alice.out());
        assertTrue(alice.out().contains("action=block kind=tokens_per_hour limit=1000 observed=1250"), alice.out());
        // Columns sized to content: every line's FINGERPRINT starts where the header's does.
        int col = alice.out().lines().findFirst().orElseThrow().indexOf("FINGERPRINT");
        assertTrue(alice.out().lines().filter(x -> x.contains("sha256:")).allMatch(x -> x.indexOf("sha256:") == col),
                alice.out());
        Result denied = run("audit", "show", f.toString(), "--event", "access.denied");
        assertTrue(denied.out().contains("code=unidentified exe=/usr/bin/curl repeats=41 uid=1002 — no workload's"
                + " selectors match"), denied.out());
        Result report = run("audit", "report", f.toString(), "--csv");
        assertEquals(0, report.code(), report.err());
        assertEquals("""
                workload,keys_issued,refreshed,revoked,accesses,denials,breaches,operator_actions
                (unidentified),0,0,0,1,41,0,0
                alice,2,0,0,1,0,1,1
                bob,2,0,0,0,0,0,0
                """, report.out());
        assertTrue(run("audit", "report", f.toString()).out().contains("the ledger verifies (OK: 9 records"));
        assertTrue(run("audit", "show", f.toString(), "--fingerprint", "sha256:bbbb", "--json").out().contains("\"bob\""));
        assertEquals(1, run("audit", "show", f.toString(), "--pid", "4242", "--json").out().lines().count());
        assertEquals(0, run("audit", "show", f.toString(), "--until", "2000-01-01T00:00:00Z", "--json").out().lines().count());
        Files.writeString(f, Files.readString(f).replace("\"bob\"", "\"eve\""));
        Result tampered = run("audit", "show", f.toString());
        assertEquals(1, tampered.code());
        assertTrue(tampered.err().contains("does not verify") && tampered.out().isEmpty(), tampered.err());
        Result shown = run("audit", "show", f.toString(), "--no-verify");
        assertEquals(0, shown.code(), shown.err());
        assertTrue(shown.out().contains("!!! the chain breaks here: BROKEN at record 2"), shown.out());
        assertTrue(shown.out().contains("eve"), "shown as it is");
        assertEquals(1, run("audit", "report", f.toString()).code());
        assertTrue(run("audit", "report", f.toString(), "--no-verify").out().contains("THE LEDGER DOES NOT VERIFY"));
        assertEquals(2, run("audit", "show", dir.resolve("none.jsonl").toString()).code());
    }

    @Test
    void policyCheckPrintsSummary() {
        Result r = run("policy", "check", "../deploy/examples/policy.yaml");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("OK: 1 key, 2 workloads"), r.out());
        assertTrue(r.out().contains("workload reviewer (spiffe://example.org/ns/agents/sa/reviewer)"), r.out());
    }

    /** Every option and parameter of every command says what it is for; the main commands show examples. */
    @Test
    void everyOptionIsDescribedAndTheMainCommandsHaveExamples() {
        java.util.List<String> bare = new java.util.ArrayList<>();
        java.util.Deque<picocli.CommandLine> todo = new java.util.ArrayDeque<>(java.util.List.of(
                KeywardenCommand.commandLine(new java.io.PrintWriter(java.io.Writer.nullWriter()),
                        new java.io.PrintWriter(java.io.Writer.nullWriter()))));
        while (!todo.isEmpty()) {
            picocli.CommandLine c = todo.pop();
            todo.addAll(c.getSubcommands().values());
            var spec = c.getCommandSpec();
            for (var o : spec.options()) {
                if (o.description().length == 0 || String.join("", o.description()).isBlank()) {
                    bare.add(spec.qualifiedName() + " " + o.longestName());
                }
            }
            for (var p : spec.positionalParameters()) {
                if (p.description().length == 0 || String.join("", p.description()).isBlank()) {
                    bare.add(spec.qualifiedName() + " " + p.paramLabel());
                }
            }
        }
        assertEquals(java.util.List.of(), bare, "options without a description");
        for (String cmd : java.util.List.of("dev", "run", "status", "revoke", "unblock", "why", "exec", "audit show",
                "audit report")) {
            Result h = run((cmd + " --help").split(" "));
            assertTrue(h.out().contains("Examples:"), cmd + " --help shows examples:\n" + h.out());
        }
    }

    @Test
    void policyCheckWarnsOfPathsThatDoNotExistAndShowsTheGuard(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("p.yaml");
        Files.writeString(f, """
                keys:
                  openai: {}
                workloads:
                  - name: agent
                    spiffeId: spiffe://t/agent
                    selectors: [unix:uid:1001, unix:path:/opt/nowhere/agent]
                    keys: [openai]
                    readers: {exe: [/usr/bin/python3.99]}
                    guard: {models: [gpt-4.1-mini], budget: {tokensPerHour: 1000}, onBreach: block}
                """);
        Result r = run("policy", "check", f.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("guard models gpt-4.1-mini tokensPerHour 1000 onBreach block"), r.out());
        assertEquals(f + ":4:5: warning: workload agent: readers.exe /usr/bin/python3.99 does not exist on this machine:"
                + " no process can read its keys here\n" + f + ":4:5: warning: workload agent: selector"
                + " unix:path:/opt/nowhere/agent names a file that does not exist on this machine: no process matches it"
                + " here\n", r.err());
    }

    @Test
    void policyCheckReportsEachProblemOnItsLineWithoutStackTrace(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("bad.yaml");
        Files.writeString(f, "keys:\n  openai: {refreshAt: 3}\nworkloads:\n  - name: A\n    spiffeId: x\n    keys: [openai]\n");
        Result r = run("policy", "check", f.toString());
        assertEquals(2, r.code());
        String[] lines = r.err().split("\n");
        assertEquals(3, lines.length, r.err());
        assertTrue(lines[0].startsWith(f + ":2:23: "), lines[0]);
        assertTrue(lines[1].startsWith(f + ":4:5: "), lines[1]);
        assertTrue(lines[2].startsWith(f + ":5:15: "), lines[2]);
        assertFalse(r.err().contains("Exception"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    @Test
    void policyCheckForVaultIssuerNeedsVaultBlocks(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("p.yaml");
        Files.writeString(f, "keys:\n  openai: {}\nworkloads: []\n");
        assertEquals(0, run("policy", "check", f.toString()).code());
        Result r = run("policy", "check", "--issuer", "vault", f.toString());
        assertEquals(2, r.code());
        assertEquals(f + ":2:3: keys.openai: 'vault' is required for a key of issuer 'vault' (type vault)\n", r.err());
    }

    @Test
    void policyCheckAgainstTheConfigsIssuerInstances(@TempDir Path dir) throws Exception {
        Path policy = dir.resolve("p.yaml");
        Files.writeString(policy, """
                keys:
                  openai: {issuer: bao, vault: {role: "{workload}", path: "openai/creds/{workload}"}}
                  scratch: {issuer: dev}
                  lost: {issuer: nowhere}
                  bare: {}
                workloads: []
                """);
        Path config = dir.resolve("c.yaml");
        Files.writeString(config, "policy: p.yaml\nissuers:\n  bao: {type: vault, address: http://127.0.0.1:8200}\n"
                + "  dev: {type: dev, ttl: 2m}\n");
        Result r = run("policy", "check", "--config", config.toString(), policy.toString());
        assertEquals(2, r.code(), r.out());
        assertEquals(policy + ":4:3: keys.lost.issuer: 'nowhere' is not an issuer instance of the config (bao, dev)\n"
                + policy + ":5:3: keys.bare: name its issuer ('issuer:', one of bao, dev): the config has 2\n", r.err());
        Files.writeString(policy, """
                keys:
                  openai: {issuer: bao, vault: {role: "{workload}", path: "openai/creds/{workload}"}}
                  scratch: {issuer: dev, params: {anything: "{workload}"}}
                workloads: []
                """);
        r = run("policy", "check", "--config", config.toString(), policy.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("key openai: issuer bao (vault), vault role {workload}"), r.out());
        assertTrue(r.out().contains("key scratch: issuer dev (dev), params anything, no vault block"), r.out());
    }

    @Test
    void devIssuersNeedsAConfigForRealAndOnlyThen(@TempDir Path dir) throws Exception {
        Result r = run("dev", "--issuers", "real");
        assertEquals(2, r.code());
        assertEquals("keywarden dev: --issuers real needs --config FILE (its 'issuers:' section)\n", r.err());
        r = run("dev", "--issuers", "vault");
        assertEquals(2, r.code());
        assertEquals("keywarden dev: --issuers must be dev or real, not 'vault'\n", r.err());
        Path c = dir.resolve("c.yaml");
        Files.writeString(c, "policy: p.yaml\nissuers: {d: {type: dev}}\n");
        // With dev issuers, --config contributes its gateway, usage, policyHook and metrics sections: checked as strictly.
        Path bad = dir.resolve("bad.yaml");
        Files.writeString(bad, "policy: p.yaml\nissuers: {d: {type: dev}}\ngateway: {listen: 0.0.0.0:8787}\n");
        r = run("dev", "--config", bad.toString());
        assertEquals(2, r.code());
        assertEquals(bad + ":3:10: gateway.listen 0.0.0.0:8787 is not a loopback address: the caller is found from the"
                + " local TCP peer; remote callers need mTLS\n", r.err());
        r = run("dev", "--upstream", "openai=http://127.0.0.1:1");
        assertEquals(2, r.code());
        assertEquals("keywarden dev: --upstream needs --gateway or --gateway-socket\n", r.err());
        r = run("dev", "--gateway", "10.0.0.1:8787");
        assertEquals(2, r.code());
        assertEquals("keywarden dev: --gateway 10.0.0.1:8787 is not a loopback address\n", r.err());
        // Dev keys sent to a real provider can only fail: the gateway needs an upstream that takes them.
        r = run("dev", "--gateway", "127.0.0.1:8787");
        assertEquals(2, r.code());
        assertEquals("keywarden dev: the gateway would send dev keys (sk-dev-…) for openai to the provider, which refuses"
                + " them: name where they go with --upstream openai=URL (a local stub or mock server), or serve real"
                + " credentials with --issuers real --config FILE\n", r.err());
        // A policy naming an instance the real config lacks is refused before anything starts.
        Path p = dir.resolve("p.yaml");
        Files.writeString(p, "keys:\n  openai: {issuer: bao}\nworkloads: []\n");
        r = run("dev", "--issuers", "real", "--config", c.toString(), "--policy", p.toString());
        assertEquals(2, r.code());
        assertEquals(p + ":2:3: keys.openai.issuer: 'bao' is not an issuer instance of the config (d)\n", r.err());
    }

    @Test
    void usageErrorsExit2() {
        assertEquals(2, run().code());
        assertEquals(2, run("bogus").code());
        assertEquals(2, run("policy").code());
        assertEquals(2, run("run").code());
        assertEquals(2, run("revoke").code());
    }

    @Test
    void badConfigExits2WithLocatedMessage(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("c.yaml");
        Files.writeString(f, "policy: p.yaml\nissuer: {provider: dev}\nnope: 1\n");
        Result r = run("run", "--config", f.toString());
        assertEquals(2, r.code());
        assertTrue(r.err().startsWith(f + ":3:1: unknown key 'nope' in the config"), r.err());
    }

    @Test
    void everyCommandOfTheContractIsRegistered() {
        for (String c : new String[] {"run", "dev", "policy", "audit", "status", "revoke", "unblock", "version"}) {
            Result r = run(c, "--help");
            assertEquals(0, r.code(), c + ": " + r.err());
        }
    }

    @Test
    void execKnowsASignalIgnoredOnEntry() {
        String nohup = "Name:\tjava\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000001\nSigCgt:\t2000000181005ccf\n";
        assertTrue(ExecCommand.ignored(nohup, 1), "SIGHUP under nohup");
        assertFalse(ExecCommand.ignored(nohup, 10), "SIGUSR1 is not");
        assertTrue(ExecCommand.ignored("SigIgn:\t0000000000000200\n", 10));
        assertFalse(ExecCommand.ignored("no such line", 1));
        assertFalse(ExecCommand.ignored("SigIgn:\tzz\n", 1));
    }
}
