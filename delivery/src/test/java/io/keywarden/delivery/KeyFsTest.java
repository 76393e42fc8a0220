package io.keywarden.delivery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.CgroupInfo;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.attestation.WorkloadAttestor;
import io.keywarden.fuse.FuseOpcode;
import io.keywarden.fuse.FuseReply;
import io.keywarden.fuse.FuseRequest;
import io.keywarden.fuse.FuseStructs;
import io.keywarden.fuse.ReplySink;
import io.keywarden.linux.Errno;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.Workload;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * KeyFS driven without a mount: requests built as the kernel sends them, replies captured from a
 * {@link ReplySink} and decoded with the wire records. The mounted behaviour is KeyFsIT's.
 */
class KeyFsTest {
    private static final Instant NOW = Instant.parse("2026-11-30T12:00:00Z");
    private final Policy policy = parse("""
            keys:
              openai: {}
            workloads:
              - {name: alice, spiffeId: "spiffe://t/alice", selectors: ["unix:uid:1001"], keys: [openai]}
              - {name: bob, spiffeId: "spiffe://t/bob", selectors: ["unix:uid:1002"], keys: [openai]}
            """);
    private final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
    private final List<String> records = new CopyOnWriteArrayList<>();
    private final Map<Integer, Attestation> who = Map.of(
            1, identified(1, 1001, "alice"), 2, identified(2, 1002, "bob"),
            3, new Attestation.Unidentified(null, "no workload matches uid 7"));
    private KeyFs fs;
    private final AccessDecider decider;
    /** The key each workload's source gives now (default sk-NAME-key). */
    private final Map<String, String> secretOf = new java.util.concurrent.ConcurrentHashMap<>();
    /** A workload's key as one issued object (a lease's), instead of a new one per open. */
    private final Map<String, IssuedKey> issuedOf = new java.util.concurrent.ConcurrentHashMap<>();
    /** A clock the test moves. */
    private final java.util.concurrent.atomic.AtomicReference<Instant> now = new java.util.concurrent.atomic.AtomicReference<>(NOW);
    private final Clock clock = new Clock() {
        @Override
        public java.time.ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now.get();
        }
    };
    private long unique;

    KeyFsTest() {
        WorkloadAttestor attestor = new WorkloadAttestor() {
            @Override
            public Attestation attest(int tid, int uid, int gid) {
                return who.get(tid);
            }

            @Override
            public boolean isAlive(ProcessInfo process) {
                return true;
            }
        };
        KeySource keys = new KeySource() {
            @Override
            public CompletionStage<IssuedKey> current(Workload workload, String key, ProcessInfo opener) {
                IssuedKey lease = issuedOf.get(workload.name());
                if (lease != null) {
                    return CompletableFuture.completedFuture(lease);
                }
                return CompletableFuture.completedFuture(new IssuedKey(secretOf.getOrDefault(workload.name(),
                        "sk-" + workload.name() + "-key").getBytes(StandardCharsets.US_ASCII), NOW.plusSeconds(300),
                        "lease-" + workload.name()));
            }

            @Override
            public LeaseStatus status(Workload workload, String key) {
                return new LeaseStatus.Failing("vault is sealed");
            }
        };
        AccessListener listener = new AccessListener() {
            @Override
            public void granted(Attestation.Identified w, String key, String file, IssuedKey issued) {
                records.add("granted " + w.workload().name() + " " + key + "/" + file);
            }

            @Override
            public void denied(Attestation w, String key, String file, io.keywarden.delivery.Decision.Refusal code,
                               String reason) {
                records.add("denied " + key + "/" + file + ": " + reason);
            }
        };

        decider = new AccessDecider(() -> policy, attestor, keys, listener, clock, Duration.ofSeconds(1), timer, timer);
        fs = new KeyFs(decider, clock);
    }

    @AfterEach
    void tearDown() {
        timer.shutdownNow();
    }

    private static Policy parse(String yaml) {
        try {
            return PolicyLoader.parse(yaml, "p.yaml");
        } catch (io.keywarden.policy.yaml.ProblemsException e) {
            throw new AssertionError(e.getMessage(), e);
        }
    }

    private Attestation identified(int pid, int uid, String name) {
        Workload w = policy.workload(name).orElseThrow();
        return new Attestation.Identified(new ProcessInfo(pid, 1, uid, uid, 0, Optional.of("/bin/cat"), Optional.empty(),
                CgroupInfo.NONE, Optional::empty), w, w.spiffeId());
    }

    /** One captured reply: the out header and the payload after it. */
    private record Captured(FuseStructs.OutHeader header, ByteBuffer payload) {
    }

    private static final class Capture implements ReplySink {
        final List<Captured> sent = new CopyOnWriteArrayList<>();
        private final ByteBuffer b = ByteBuffer.allocate(8192).order(ByteOrder.LITTLE_ENDIAN);

        @Override
        public ByteBuffer buffer() {
            return b;
        }

        @Override
        public void send(FuseReply reply, ByteBuffer buf, int length) {
            ByteBuffer copy = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
            copy.put(0, buf, 0, length);
            sent.add(new Captured(FuseStructs.OutHeader.decode(copy, 0), copy.slice(16, length - 16)
                    .order(ByteOrder.LITTLE_ENDIAN)));
        }

        Captured only() {
            assertEquals(1, sent.size(), "one answer per request");
            return sent.get(0);
        }
    }

    private Captured call(int opcode, int pid, java.util.function.BiConsumer<FuseRequest, FuseReply> op) {
        Capture c = new Capture();
        FuseRequest req = new FuseRequest(++unique, opcode, 0, 0, 0, pid, ByteBuffer.allocate(0));
        op.accept(req, new FuseReply(c, req.unique(), opcode));
        return c.only();
    }

    private long lookup(int pid, long parent, String name) {
        Captured r = call(FuseOpcode.LOOKUP, pid, (req, reply) -> fs.lookup(req, parent, name, reply));
        assertEquals(0, r.header().error(), name);
        return FuseStructs.EntryOut.decode(r.payload(), 0).nodeId();
    }

    private String read(int pid, long node) {
        return read(pid, node, 1 | 1 << 5);
    }

    /** Opens, reads and releases {@code node}; the open's flags must be {@code flags}. */
    private String read(int pid, long node, int flags) {
        Captured open = call(FuseOpcode.OPEN, pid, (req, reply) -> fs.open(req, node, 0, reply));
        assertEquals(0, open.header().error());
        FuseStructs.OpenOut out = FuseStructs.OpenOut.decode(open.payload(), 0);
        assertEquals(flags, out.openFlags(), flags == CACHED ? "through the page cache, kept; no flush"
                : "direct I/O, no flush");
        Captured data = call(FuseOpcode.READ, pid, (req, reply) -> fs.read(req, node, out.fh(), 0, 4096, reply));
        byte[] bytes = new byte[data.payload().remaining()];
        data.payload().get(bytes);
        call(FuseOpcode.RELEASE, pid, (req, reply) -> fs.release(req, node, out.fh(), reply));
        return new String(bytes, StandardCharsets.US_ASCII);
    }

    @Test
    void eachWorkloadLooksUpItsOwnApiKeyInodeAndReadsItsOwnKey() {
        long dir = lookup(1, 1, "openai");
        assertEquals(dir, lookup(2, 1, "openai"), "directories are the same for everyone");
        long alice = lookup(1, dir, "api_key");
        long bob = lookup(2, dir, "api_key");
        assertNotEquals(alice, bob, "api_key is one inode per (key, workload)");
        assertEquals("sk-alice-key", read(1, alice));
        assertEquals("sk-bob-key", read(2, bob));
        assertEquals(0, fs.openHandles(), "released handles are gone");
        assertEquals(List.of("granted alice openai/api_key", "granted bob openai/api_key"), records);
    }

    private FuseStructs.EntryOut entry(int pid, long parent, String name) {
        Captured r = call(FuseOpcode.LOOKUP, pid, (req, reply) -> fs.lookup(req, parent, name, reply));
        assertEquals(0, r.header().error(), name);
        return FuseStructs.EntryOut.decode(r.payload(), 0);
    }

    private long openHandle(int pid, long node) {
        Captured open = call(FuseOpcode.OPEN, pid, (req, reply) -> fs.open(req, node, 0, reply));
        assertEquals(0, open.header().error());
        return FuseStructs.OpenOut.decode(open.payload(), 0).fh();
    }

    private Captured readHandle(int pid, long node, long fh) {
        return call(FuseOpcode.READ, pid, (req, reply) -> fs.read(req, node, fh, 0, 4096, reply));
    }

    private static final int CACHED = 1 << 1 | 1 << 5;

    private static String fingerprintOf(String key) {
        return IssuedKey.fingerprint(io.keywarden.linux.Secret.copyOf(key.getBytes(StandardCharsets.US_ASCII)));
    }

    @Test
    void aKeysInodeIsReadThroughThePageCacheOnceItsLengthOutlivedTheKernelsAttributes() {
        long dir = lookup(1, 1, "openai");
        long alice = lookup(1, dir, "api_key");
        assertEquals("sk-alice-key", read(1, alice), "direct I/O while the kernel may hold the upper bound as its size");
        now.set(NOW.plusSeconds(9));
        assertEquals("sk-alice-key", read(1, alice));
        now.set(NOW.plusSeconds(10));
        assertEquals("sk-alice-key", read(1, alice, CACHED), "then through the page cache");
        // A new key: a new inode, direct again for its first seconds; the older inode is stale.
        secretOf.put("alice", "sk-alice-new");
        Captured stale = call(FuseOpcode.OPEN, 1, (req, reply) -> fs.open(req, alice, 0, reply));
        assertEquals(-Errno.ESTALE, stale.header().error());
        long next = lookup(1, dir, "api_key");
        assertEquals("sk-alice-new", read(1, next));
        now.set(NOW.plusSeconds(20));
        assertEquals("sk-alice-new", read(1, next, CACHED));
        assertEquals("spiffe://t/alice\n", read(1, KeyFsInodes.file(dir, KeyFsInodes.SPIFFE_ID)), "other files: direct");
    }

    @Test
    void aNewKeyIsServedOnANewGenerationAndAnOlderOneReadsNothingMore() {
        long dir = lookup(1, 1, "openai");
        FuseStructs.EntryOut first = entry(1, dir, "api_key");
        assertEquals(KeyFs.SPLICE_SIZE, first.attr().size(), "an upper bound before a key was served");
        long fh = openHandle(1, first.nodeId());
        assertEquals(0, readHandle(1, first.nodeId(), fh).header().error());
        FuseStructs.EntryOut again = entry(1, dir, "api_key");
        assertEquals(first.nodeId(), again.nodeId(), "the same key, the same inode");
        assertEquals("sk-alice-key".length(), again.attr().size(), "the key's length once served (the cache is kept)");
        // The source gives another key: met at an open on the old inode, which is then stale.
        secretOf.put("alice", "sk-alice-next");
        Captured stale = call(FuseOpcode.OPEN, 1, (req, reply) -> fs.open(req, first.nodeId(), 0, reply));
        assertEquals(-Errno.ESTALE, stale.header().error(), "looked up again");
        FuseStructs.EntryOut next = entry(1, dir, "api_key");
        assertNotEquals(first.nodeId(), next.nodeId(), "a new key, a new inode");
        assertEquals(again.generation() + 1, next.generation(), "the LOOKUP's generation counts the keys");
        assertEquals("sk-alice-next", read(1, next.nodeId()));
        Captured old = readHandle(1, first.nodeId(), fh);
        assertEquals(0, old.header().error(), "a handle of the older generation reads its own key");
        assertEquals("sk-alice-key", java.nio.charset.StandardCharsets.US_ASCII.decode(old.payload()).toString());
        // The older key revoked (a refresh's previous key at the end of its grace): its handle reads no more.
        fs.keyGone("alice", "openai", fingerprintOf("sk-alice-key"));
        assertEquals(-Errno.ESTALE, readHandle(1, first.nodeId(), fh).header().error());
        call(FuseOpcode.RELEASE, 1, (req, reply) -> fs.release(req, first.nodeId(), fh, reply));
        long held = openHandle(1, next.nodeId());
        // Gone (revoked): the generation is retired; the next key is served on a new one.
        fs.keyGone("alice", "openai", fingerprintOf("sk-alice-next"));
        assertEquals(-Errno.ESTALE, readHandle(1, next.nodeId(), held).header().error(),
                "a handle of a revoked key reads nothing more (its copy wiped)");
        call(FuseOpcode.RELEASE, 1, (req, reply) -> fs.release(req, next.nodeId(), held, reply));
        long afterGone = lookup(1, dir, "api_key");
        assertNotEquals(next.nodeId(), afterGone, "a retired generation's inode is not looked up again");
        // An open that obtains the revoked key (decided before the revoke, answered after it) is not served.
        Captured late = call(FuseOpcode.OPEN, 1, (req, reply) -> fs.open(req, afterGone, 0, reply));
        assertEquals(-Errno.ESTALE, late.header().error(), "a revoked key is never served again");
        secretOf.put("alice", "sk-alice-third");
        assertEquals("sk-alice-third", read(1, afterGone), "a generation that served nothing takes the next key");
        // Another workload's generations are its own.
        assertEquals("sk-bob-key", read(2, lookup(2, dir, "api_key")));
        assertEquals(0, fs.openHandles());
    }

    @Test
    void anApiKeyHandleReadsItsLeasesOwnBytesWhichOnlyTheLeaseWipes() {
        IssuedKey lease = new IssuedKey("sk-alice-lease".getBytes(StandardCharsets.US_ASCII), NOW.plusSeconds(300),
                "lease-alice");
        issuedOf.put("alice", lease);
        long node = lookup(1, lookup(1, 1, "openai"), "api_key");
        long first = openHandle(1, node);
        long second = openHandle(1, node);
        call(FuseOpcode.RELEASE, 1, (req, reply) -> fs.release(req, node, first, reply));
        Captured r = readHandle(1, node, second);
        assertEquals(0, r.header().error(), "releasing one handle wipes nothing the lease owns");
        assertEquals("sk-alice-lease", StandardCharsets.US_ASCII.decode(r.payload()).toString());
        assertEquals(14, lease.length(), "the lease's key is intact after a release");
        // The lease dropped (revoked: its bytes wiped) before KeyFS hears of it: the handle reads nothing.
        lease.destroy();
        assertEquals(-Errno.ESTALE, readHandle(1, node, second).header().error(),
                "a handle whose lease wiped its key answers ESTALE, never other bytes");
        call(FuseOpcode.RELEASE, 1, (req, reply) -> fs.release(req, node, second, reply));
        assertEquals(0, fs.openHandles());
    }

    @Test
    void anOpenThatFailsWhileBeingAnsweredIsAnsweredEio() {
        // A key source that hands over a lease whose bytes are already gone (a broken handover).
        issuedOf.put("alice", IssuedKey.wiped("sha256:0123456789abcdef", NOW.plusSeconds(300), "lease-wiped"));
        long node = lookup(1, lookup(1, 1, "openai"), "api_key");
        Captured open = call(FuseOpcode.OPEN, 1, (req, reply) -> fs.open(req, node, 0, reply));
        assertEquals(-Errno.EIO, open.header().error(), "answered, not left waiting");
        assertEquals(0, fs.openHandles());
    }

    @Test
    void anotherWorkloadsInodeIsStaleAndStrangersAreRefused() {
        long dir = lookup(1, 1, "openai");
        long alice = lookup(1, dir, "api_key");
        Captured stale = call(FuseOpcode.OPEN, 2, (req, reply) -> fs.open(req, alice, 0, reply));
        assertEquals(-Errno.ESTALE, stale.header().error(), "the kernel looks the name up again for bob");
        long shared = lookup(3, dir, "api_key");
        Captured denied = call(FuseOpcode.OPEN, 3, (req, reply) -> fs.open(req, shared, 0, reply));
        assertEquals(-Errno.EACCES, denied.header().error());
        assertEquals(List.of("denied openai/api_key: no workload matches uid 7"), records);
        Captured write = call(FuseOpcode.OPEN, 1, (req, reply) -> fs.open(req, alice, 1, reply));
        assertEquals(-Errno.EROFS, write.header().error());
        Captured unknown = call(FuseOpcode.LOOKUP, 1, (req, reply) -> fs.lookup(req, 1, "nope", reply));
        assertEquals(-Errno.ENOENT, unknown.header().error());
    }

    @Test
    void statusRendersTheTypedState() {
        long dir = lookup(1, 1, "openai");
        assertEquals("error: vault is sealed\n", read(1, lookup(1, dir, "status")));
        assertEquals("spiffe://t/alice\n", read(1, lookup(1, dir, "spiffe_id")));
        assertEquals("2026-11-30T12:05:00Z\n", read(1, lookup(1, dir, "expires_at")));
    }

    /** A handover: the successor answers with the same node ids, and handles opened before it read on. */
    @Test
    void aSuccessorContinuesTheNodeIdsAndTheOpenHandles() {
        long dir = lookup(1, 1, "openai");
        long alice = lookup(1, dir, "api_key");
        Captured open = call(FuseOpcode.OPEN, 1, (req, reply) -> fs.open(req, alice, 0, reply));
        long fh = FuseStructs.OpenOut.decode(open.payload(), 0).fh();
        Captured opendir = call(FuseOpcode.OPENDIR, 1, (req, reply) -> fs.opendir(req, 1, 0, reply));
        long dh = FuseStructs.OpenOut.decode(opendir.payload(), 0).fh();
        KeyFs.State state = fs.export();
        fs = KeyFs.continuing(decider, clock, state);
        Captured data = call(FuseOpcode.READ, 1, (req, reply) -> fs.read(req, alice, fh, 0, 4096, reply));
        byte[] bytes = new byte[data.payload().remaining()];
        data.payload().get(bytes);
        assertEquals("sk-alice-key", new String(bytes, StandardCharsets.US_ASCII), "a handle opened before reads on");
        Captured list = call(FuseOpcode.READDIR, 1, (req, reply) -> fs.readdir(req, 1, dh, 0, 4096, reply));
        assertEquals("openai", new String(FuseStructs.Dirent.decode(list.payload(), 64).name(), StandardCharsets.UTF_8));
        assertEquals(dir, lookup(1, 1, "openai"), "the same directory node");
        assertEquals(alice, lookup(1, dir, "api_key"), "the same api_key inode for the same workload");
        assertNotEquals(alice, lookup(2, dir, "api_key"), "a workload seen first by the successor gets a slot of its own");
        Captured again = call(FuseOpcode.OPEN, 1, (req, reply) -> fs.open(req, alice, 0, reply));
        assertTrue(FuseStructs.OpenOut.decode(again.payload(), 0).fh() > dh, "handle numbers continue, never reused");
        assertEquals(3, fs.openHandles(), "both handed-over handles are open, plus the new one");
    }

    @Test
    void theRootListsOnlyTheCallersKeys() {
        Captured open = call(FuseOpcode.OPENDIR, 3, (req, reply) -> fs.opendir(req, 1, 0, reply));
        long fh = FuseStructs.OpenOut.decode(open.payload(), 0).fh();
        Captured list = call(FuseOpcode.READDIR, 3, (req, reply) -> fs.readdir(req, 1, fh, 0, 4096, reply));
        assertEquals(2 * 32, list.payload().remaining(), "only . and .. for a stranger");
        open = call(FuseOpcode.OPENDIR, 1, (req, reply) -> fs.opendir(req, 1, 0, reply));
        long fh2 = FuseStructs.OpenOut.decode(open.payload(), 0).fh();
        list = call(FuseOpcode.READDIR, 1, (req, reply) -> fs.readdir(req, 1, fh2, 0, 4096, reply));
        assertEquals("openai", new String(FuseStructs.Dirent.decode(list.payload(), 64).name(), StandardCharsets.UTF_8));
        assertTrue(records.isEmpty(), "listing records nothing");
    }
}
