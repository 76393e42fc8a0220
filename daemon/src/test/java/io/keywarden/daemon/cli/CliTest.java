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
    void policyCheckPrintsSummary() {
        Result r = run("policy", "check", "../deploy/examples/policy.yaml");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("OK: 1 key, 2 workloads"), r.out());
        assertTrue(r.out().contains("workload reviewer (spiffe://example.org/ns/agents/sa/reviewer)"), r.out());
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
        assertEquals(f + ":2:3: keys.openai: 'vault' is required when the issuer is vault\n", r.err());
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
}
