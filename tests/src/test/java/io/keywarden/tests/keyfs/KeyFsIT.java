package io.keywarden.tests.keyfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.FuseSession;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.tests.support.TestKeyFs;
import io.keywarden.testkit.MemoryKeySource;
import io.keywarden.testkit.ManualClock;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.RecordingListener;
import io.keywarden.tests.support.Requirements;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** KeyFS mounted for real; readers are real processes of several uids. */
class KeyFsIT {
    static final int ALICE = 1001;
    static final int BOB = 1002;
    static final int CAROL = 1003;

    static final String POLICY = """
            keys:
              openai: {}
              anthropic: {}
            workloads:
              - name: alice
                spiffeId: spiffe://test.local/alice
                selectors: [unix:uid:1001]
                keys: [openai]
              - name: bob
                spiffeId: spiffe://test.local/bob
                selectors: [unix:uid:1002]
                keys: [openai, anthropic]
              - name: carol
                spiffeId: spiffe://test.local/carol
                selectors: [unix:uid:1003]
                keys: [openai]
                readers: {exe: [/usr/bin/cat]}
            """;

    Path mnt;
    FuseSession session;
    MemoryKeySource keys;
    RecordingListener audit;
    ManualClock clock;
    KeyFs fs;

    static IssuedKey key(String secret, Instant expires) {
        return new IssuedKey(secret.getBytes(StandardCharsets.UTF_8), expires, "lease-" + secret.hashCode());
    }

    @BeforeEach
    void mount() throws Exception {
        Requirements.rootAndFuse();
        Policy policy = PolicyLoader.parse(POLICY, "policy.yaml");
        clock = new ManualClock(Instant.now());
        keys = new MemoryKeySource();
        audit = new RecordingListener();
        Instant exp = clock.instant().plus(Duration.ofMinutes(5));
        keys.set("alice", "openai", key("sk-alice-openai-0001", exp));
        keys.set("bob", "openai", key("sk-bob-openai-0002", exp));
        keys.set("bob", "anthropic", key("sk-bob-anthropic-0003", exp));
        keys.set("carol", "openai", key("sk-carol-openai-0004", exp));
        fs = TestKeyFs.of(policy, keys, audit, clock,
                Duration.ofSeconds(3));
        mnt = Files.createTempDirectory("kw-keyfs-");
        session = FuseSession.mount(mnt, fs, FuseSession.Options.defaults("keywarden"));
        fs.attach(session);
    }

    @AfterEach
    void unmount() throws Exception {
        if (session != null) {
            session.close();
        }
        if (mnt != null) {
            Files.deleteIfExists(mnt);
        }
    }

    String path(String rel) {
        return mnt.resolve(rel).toString();
    }

    @Test
    void eachWorkloadReadsExactlyItsOwnKey() {
        Proc.Result a = Proc.as(ALICE, "cat", path("openai/api_key"));
        assertEquals(0, a.code(), a.err());
        assertEquals("sk-alice-openai-0001", a.out());
        Proc.Result b = Proc.as(BOB, "cat", path("openai/api_key"));
        assertEquals("sk-bob-openai-0002", b.out());
        assertEquals("sk-bob-anthropic-0003", Proc.as(BOB, "cat", path("anthropic/api_key")).out());
        assertEquals("spiffe://test.local/bob\n", Proc.as(BOB, "cat", path("openai/spiffe_id")).out());
        assertEquals("ok\n", Proc.as(BOB, "cat", path("openai/status")).out());
        String exp = Proc.as(BOB, "cat", path("openai/expires_at")).out();
        assertTrue(exp.matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\n"), exp);
    }

    @Test
    void otherUidGetsEaccesAndTheDenialIsRecorded() {
        Proc.Result r = Proc.as(4242, "cat", path("openai/api_key"));
        assertEquals(1, r.code());
        assertTrue(r.err().contains("Permission denied"), r.err());
        assertFalse(r.out().contains("sk-"), "no key may reach an unauthorised reader");
        assertTrue(audit.denials().stream().anyMatch(e -> e.uid() == 4242 && e.reason().contains("no workload")),
                audit.events.toString());
    }

    @Test
    void keyNotGrantedIsEaccesAndUnknownNameIsEnoent() {
        Proc.Result r = Proc.as(ALICE, "cat", path("anthropic/api_key"));
        assertTrue(r.err().contains("Permission denied"), r.err());
        Proc.Result u = Proc.as(ALICE, "cat", path("gemini/api_key"));
        assertTrue(u.err().contains("No such file or directory"), u.err());
        Proc.Result f = Proc.as(ALICE, "cat", path("openai/password"));
        assertTrue(f.err().contains("No such file or directory"), f.err());
    }

    @Test
    void sameUidOtherExecutableIsRefusedWhenReadersNameExe() {
        assertEquals("sk-carol-openai-0004", Proc.as(CAROL, "cat", path("openai/api_key")).out());
        Proc.Result r = Proc.as(CAROL, "head", "-c", "100", path("openai/api_key"));
        assertEquals(1, r.code());
        assertTrue(r.err().contains("Permission denied"), r.err());
        assertTrue(audit.denials().stream().anyMatch(e -> e.reason().contains("/usr/bin/head is not a permitted reader")));
    }

    @Test
    void lsShowsOnlyTheCallersKeys() {
        assertEquals("openai\n", Proc.as(ALICE, "ls", mnt.toString()).out());
        assertEquals("anthropic\nopenai\n", Proc.as(BOB, "ls", mnt.toString()).out());
        assertEquals("", Proc.as(4242, "ls", mnt.toString()).out());
        assertEquals("api_key\nexpires_at\nheaders\nspiffe_id\nstatus\n", Proc.as(ALICE, "ls", path("openai")).out());
        assertTrue(Proc.as(ALICE, "ls", path("anthropic")).err().contains("Permission denied"));
    }

    /** Python's sendfile (what shutil.copyfile uses) and copy_file_range, as the caller. */
    static String sendfile(int uid, String path) {
        Proc.Result r = Proc.as(uid, "/usr/bin/python3", "-c", """
                import os, sys
                src = os.open(sys.argv[1], os.O_RDONLY)
                r, w = os.pipe()
                n = os.sendfile(w, src, 0, 4096)
                os.close(w)
                sys.stdout.write(os.read(r, 65536).decode())
                sys.stderr.write("sent %d\\n" % n)
                """, path);
        if (!r.ok()) {
            return "ERROR: " + r.err();
        }
        return r.out();
    }

    @Test
    void sendfileAndSpliceReadTheCallersOwnKeyAndNeverAnothers() throws Exception {
        String api = path("openai/api_key");
        assertEquals("sk-alice-openai-0001", sendfile(ALICE, api));
        // Bob right after Alice: the kernel cached the name with Alice's inode; Bob gets his own.
        assertEquals("sk-bob-openai-0002", sendfile(BOB, api));
        assertEquals("sk-alice-openai-0001", sendfile(ALICE, api));
        assertEquals("sk-alice-openai-0001", Proc.as(ALICE, "cat", api).out(), "read() and sendfile agree");
        Proc.Result r = Proc.as(4242, "/usr/bin/python3", "-c", "import os; os.sendfile(1, os.open('" + api + "', os.O_RDONLY), 0, 4096)");
        assertTrue(r.err().contains("Permission denied"), r.err());
        assertFalse(r.out().contains("sk-"));
        // A new key (refresh): what the page cache held is dropped.
        IssuedKey next = key("sk-alice-openai-0005", clock.instant().plus(Duration.ofMinutes(5)));
        keys.set("alice", "openai", next);
        fs.keyIssued("alice", "openai", next);
        // Served on a new inode at once: the old inode's pages never hold the new key.
        assertEquals("sk-alice-openai-0005", sendfile(ALICE, api));
        Proc.Result copy = Proc.as(ALICE, "/usr/bin/python3", "-c", "import shutil, sys; shutil.copyfileobj(open(sys.argv[1], 'rb'),"
                + " sys.stdout.buffer)", api);
        assertEquals("sk-alice-openai-0005", copy.out());
    }

    @Test
    void writesAreRefused() {
        Proc.Result r = Proc.as(ALICE, "sh", "-c", "echo x > " + path("openai/api_key"));
        assertFalse(r.ok());
        for (String op : new String[] {"touch " + path("openai/new"), "rm " + path("openai/status"),
                "mkdir " + path("x"), "mv " + path("openai/status") + " " + path("openai/s2"), "ln -s /etc " + path("openai/l"),
                "chmod 777 " + path("openai/status")}) {
            Proc.Result w = Proc.as(ALICE, "sh", "-c", op);
            assertTrue(w.err().contains("Read-only file system"), op + ": " + w.err());
        }
    }

    @Test
    void failingIssuerGivesEioAndStatusExplains() {
        keys.fail("alice", "openai", "issuer unavailable: connection refused");
        Proc.Result r = Proc.as(ALICE, "cat", path("openai/api_key"));
        assertTrue(r.err().contains("Input/output error"), r.err());
        assertEquals("error: issuer unavailable: connection refused\n", Proc.as(ALICE, "cat", path("openai/status")).out());
    }

    @Test
    void expiredKeyIsNeverServed() {
        keys.set("alice", "openai", key("sk-alice-old", clock.instant().plus(Duration.ofSeconds(30))));
        assertEquals("sk-alice-old", Proc.as(ALICE, "cat", path("openai/api_key")).out());
        clock.advance(Duration.ofSeconds(30));
        Proc.Result r = Proc.as(ALICE, "cat", path("openai/api_key"));
        assertTrue(r.err().contains("Input/output error"), r.err());
        assertEquals("", r.out());
    }

    @Test
    void slowIssuanceDoesNotBlockOtherCallers() throws Exception {
        CompletableFuture<IssuedKey> slow = keys.pending("alice", "openai");
        CompletableFuture<Proc.Result> waiting = CompletableFuture.supplyAsync(() -> Proc.as(ALICE, "cat", path("openai/api_key")));
        long t0 = System.nanoTime();
        for (int i = 0; i < 20; i++) {
            assertEquals("sk-bob-openai-0002", Proc.as(BOB, "cat", path("openai/api_key")).out());
        }
        long bobMillis = (System.nanoTime() - t0) / 1_000_000;
        assertFalse(waiting.isDone(), "alice's open must still be waiting for issuance");
        io.keywarden.testkit.Await.until(Duration.ofSeconds(10), () -> session.unansweredRequests() == 1,
                () -> session.unansweredRequests() + " requests kept unanswered, not alice's waiting open alone");
        slow.complete(key("sk-alice-late", clock.instant().plus(Duration.ofMinutes(5))));
        assertEquals("sk-alice-late", waiting.get().out());
        assertEquals(0, session.unansweredRequests(), "answered later, from another thread: no longer kept");
        assertTrue(bobMillis < 2500, "bob's 20 reads took " + bobMillis + " ms while alice waited");
    }

    @Test
    void issuanceTimeoutGivesEio() {
        keys.pending("alice", "openai");
        long t0 = System.nanoTime();
        Proc.Result r = Proc.as(ALICE, "cat", path("openai/api_key"));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(r.err().contains("Input/output error"), r.err());
        assertTrue(ms >= 2900, "answered after " + ms + " ms, before the 3 s issuer timeout");
        assertEquals(0, session.unansweredRequests(), "answered EIO by the timer: no longer kept");
    }
}
