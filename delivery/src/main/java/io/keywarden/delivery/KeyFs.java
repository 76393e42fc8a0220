package io.keywarden.delivery;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.WorkloadAttestor;
import io.keywarden.fuse.DirentList;
import io.keywarden.fuse.FuseAttr;
import io.keywarden.fuse.FuseOperations;
import io.keywarden.fuse.FuseReply;
import io.keywarden.fuse.FuseRequest;
import io.keywarden.fuse.FuseSession;
import io.keywarden.linux.Errno;
import io.keywarden.linux.Secret;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The key file system: a per-caller view of {@code <key>/{api_key,expires_at,spiffe_id,status}}.
 * Every OPEN, OPENDIR and ACCESS is decided for the calling process, and each open gets its own
 * copy of the content, read with direct I/O.
 *
 * <p>{@code api_key} is one inode per (key, workload): LOOKUP answers the caller's own, and an
 * OPEN of another workload's (a name the kernel cached for someone else) answers ESTALE, on which
 * the kernel looks the name up again for this caller and retries. So the page cache that
 * {@code sendfile}/{@code splice} read through (they bypass direct I/O) only ever holds the keys
 * of the one workload whose processes may open that inode, and is dropped when its key changes
 * ({@link #keyChanged}). The other files and directories resolve the same for everyone (so the
 * kernel may cache their names); their content is never cached.
 */
public final class KeyFs implements FuseOperations {
    private static final System.Logger LOG = System.getLogger(KeyFs.class.getName());

    static final long ROOT = 1;
    static final String[] FILES = {"api_key", "expires_at", "spiffe_id", "status"};
    private static final int API_KEY = 1;
    private static final int EXPIRES_AT = 2;
    private static final int SPIFFE_ID = 3;
    private static final int STATUS = 4;
    /** Names are caller-independent, so caching them is safe; decisions are never cached. */
    private static final long ENTRY_VALID_NANOS = 5_000_000_000L;
    /** Node ids: bits 0–3 the file, 4–39 the key, 40–62 the workload of an api_key inode (0: shared). */
    private static final int WORKLOAD_SHIFT = 40;
    private static final long KEY_BITS = (1L << WORKLOAD_SHIFT) - 1;
    /**
     * The size api_key reports on a workload's own inode: an upper bound, so that sendfile/splice
     * (which stop at the size) read the whole key; the read comes back short and the kernel takes
     * the real length from it. Shared inodes report 0, as procfs does.
     */
    static final long SPLICE_SIZE = 4096;
    private static final int OPEN_FLAGS = FuseSession.FOPEN_DIRECT_IO | FuseSession.FOPEN_NOFLUSH;

    private final Supplier<Policy> policy;
    private final WorkloadAttestor attestor;
    private final KeySource keys;
    private final AccessListener listener;
    private final Clock clock;
    private final Duration issueTimeout;
    private final long mountTime;

    private final Map<String, Long> inodeOfKey = new ConcurrentHashMap<>();
    private final Map<Long, String> keyOfInode = new ConcurrentHashMap<>();
    private final AtomicLong nextKeyIndex = new AtomicLong(1);
    private final Map<Long, Secret> openFiles = new ConcurrentHashMap<>();
    private final Map<Long, DirentList> openDirs = new ConcurrentHashMap<>();
    private final AtomicLong nextHandle = new AtomicLong(1);
    private final Map<String, Long> slotOfWorkload = new ConcurrentHashMap<>();
    private final AtomicLong nextWorkloadSlot = new AtomicLong(1);
    private volatile FuseSession session;

    public KeyFs(Supplier<Policy> policy, WorkloadAttestor attestor, KeySource keys, AccessListener listener, Clock clock,
                 Duration issueTimeout) {
        this.policy = policy;
        this.attestor = attestor;
        this.keys = keys;
        this.listener = listener;
        this.clock = clock;
        this.issueTimeout = issueTimeout;
        this.mountTime = clock.instant().getEpochSecond();
    }

    /** Open handles (files and directories): for tests and status. */
    public int openHandles() {
        return openFiles.size() + openDirs.size();
    }

    private long dirInode(String key) {
        return inodeOfKey.computeIfAbsent(key, k -> {
            long ino = nextKeyIndex.getAndIncrement() * 16;
            keyOfInode.put(ino, k);
            return ino;
        });
    }

    /** The key a node belongs to, or null for the root and unknown nodes. */
    private String keyOf(long node) {
        return keyOfInode.get(node & KEY_BITS & ~15L);
    }

    private long workloadSlot(String workload) {
        return slotOfWorkload.computeIfAbsent(workload, w -> nextWorkloadSlot.getAndIncrement());
    }

    /** The api_key inode of {@code workload} for {@code key}. */
    private long apiKeyInode(String key, String workload) {
        return dirInode(key) + API_KEY | workloadSlot(workload) << WORKLOAD_SHIFT;
    }

    /** Gives KeyFS the mounted session, so it can tell the kernel when a key's content changed. */
    public void attach(FuseSession s) {
        this.session = s;
    }

    /**
     * {@code workload}'s key changed (issued, refreshed, revoked): the kernel drops the pages and
     * attributes it may hold for that workload's api_key inode.
     */
    public void keyChanged(String workload, String key) {
        FuseSession s = session;
        if (s != null && inodeOfKey.containsKey(key)) {
            s.invalidateInode(apiKeyInode(key, workload));
        }
    }

    private static int fileOf(long node) {
        return (int) (node & 15);
    }

    private FuseAttr attrOf(long node) {
        if (node == ROOT) {
            return FuseAttr.directory(ROOT, 0555, mountTime);
        }
        if (fileOf(node) == 0) {
            return FuseAttr.directory(node, 0555, mountTime);
        }
        return FuseAttr.file(node, fileOf(node) == API_KEY && node >>> WORKLOAD_SHIFT != 0 ? SPLICE_SIZE : 0, 0444,
                mountTime);
    }

    @Override
    public void lookup(FuseRequest req, long parent, String name, FuseReply reply) {
        if (parent == ROOT) {
            if (!policy.get().keys().containsKey(name)) {
                reply.error(Errno.ENOENT);
                return;
            }
            long ino = dirInode(name);
            reply.entry(ino, attrOf(ino), ENTRY_VALID_NANOS, ENTRY_VALID_NANOS);
            return;
        }
        String key = keyOf(parent);
        if (key == null || fileOf(parent) != 0) {
            reply.error(Errno.ENOENT);
            return;
        }
        for (int i = 0; i < FILES.length; i++) {
            if (FILES[i].equals(name)) {
                long ino = i + 1 == API_KEY ? ownApiKeyInode(req, key, parent + API_KEY) : parent + i + 1;
                reply.entry(ino, attrOf(ino), ENTRY_VALID_NANOS, ENTRY_VALID_NANOS);
                return;
            }
        }
        reply.error(Errno.ENOENT);
    }

    /** The caller's own api_key inode when it may read the key; the shared one (size 0) otherwise. */
    private long ownApiKeyInode(FuseRequest req, String key, long shared) {
        Attestation a = attestor.attest(req.pid(), req.uid(), req.gid());
        if (a instanceof Attestation.Identified who && who.workload().grants(key)
                && who.workload().readers().refusal(who.process()).isEmpty()) {
            return apiKeyInode(key, who.workload().name());
        }
        return shared;
    }

    @Override
    public void getattr(FuseRequest req, long node, FuseReply reply) {
        if (node != ROOT && (keyOf(node) == null || fileOf(node) > FILES.length)) {
            reply.error(Errno.ENOENT);
            return;
        }
        reply.attr(attrOf(node), ENTRY_VALID_NANOS);
    }

    /** Decides whether the caller may see {@code key}: null when granted, else the errno. */
    private Decision decide(FuseRequest req, String key, String file) {
        if (key == null || !policy.get().keys().containsKey(key)) {
            return Decision.error(Errno.ENOENT);
        }
        Attestation a = attestor.attest(req.pid(), req.uid(), req.gid());
        if (!(a instanceof Attestation.Identified who)) {
            String reason = ((Attestation.Unidentified) a).reason();
            listener.denied(a, key, file, reason);
            return Decision.error(Errno.EACCES);
        }
        if (!who.workload().grants(key)) {
            listener.denied(a, key, file, "workload " + who.workload().name() + " is not granted key " + key);
            return Decision.error(Errno.EACCES);
        }
        var refusal = who.workload().readers().refusal(who.process());
        if (refusal.isPresent()) {
            listener.denied(a, key, file, refusal.get());
            return Decision.error(Errno.EACCES);
        }
        return new Decision(who, 0);
    }

    private record Decision(Attestation.Identified who, int errno) {
        static Decision error(int errno) {
            return new Decision(null, errno);
        }
    }

    @Override
    public void open(FuseRequest req, long node, int flags, FuseReply reply) {
        int file = fileOf(node);
        String key = keyOf(node);
        if (node == ROOT || file == 0) {
            reply.error(Errno.EISDIR);
            return;
        }
        if (key == null || file > FILES.length) {
            reply.error(Errno.ENOENT);
            return;
        }
        if ((flags & 3) != 0) {
            reply.error(Errno.EROFS);
            return;
        }
        String name = FILES[file - 1];
        Decision d = decide(req, key, name);
        if (d.who() == null) {
            reply.error(d.errno());
            return;
        }
        Attestation.Identified who = d.who();
        if (file == API_KEY && node != apiKeyInode(key, who.workload().name())) {
            // A name cached for another caller (or the shared inode): look it up again for this one.
            reply.error(Errno.ESTALE);
            return;
        }
        switch (file) {
            case SPIFFE_ID -> serve(reply, who, key, name, null, text(who.spiffeId() + "\n"));
            case STATUS -> serve(reply, who, key, name, null, text(keys.status(who.workload(), key) + "\n"));
            default -> {
                CompletableFuture<IssuedKey> f = keys.current(who.workload(), key, who.process()).toCompletableFuture();
                boolean waited = !f.isDone();
                f.orTimeout(issueTimeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)
                        .whenComplete((issued, err) -> answerKeyOpen(reply, who, key, name, file, issued, err, waited));
            }
        }
    }

    private void answerKeyOpen(FuseReply reply, Attestation.Identified who, String key, String name, int file,
                               IssuedKey issued, Throwable err, boolean waited) {
        try {
            if (reply.isDone()) {
                return;
            }
            if (err != null) {
                Throwable cause = err instanceof CompletionException && err.getCause() != null ? err.getCause() : err;
                String why = cause instanceof TimeoutException ? "issuer did not answer within " + issueTimeout.toSeconds() + "s"
                        : cause instanceof KeyUnavailableException ? cause.getMessage() : "issuer failed: "
                        + cause.getClass().getSimpleName();
                listener.denied(who, key, name, why);
                reply.error(cause instanceof KeyBlockedException ? Errno.EACCES : Errno.EIO);
                return;
            }
            if (issued.isExpiredAt(clock.instant())) {
                listener.denied(who, key, name, "key expired at " + issued.expiresAt());
                reply.error(Errno.EIO);
                return;
            }
            // Attestation checked the start time just now; after a wait for issuance, check it again.
            if (waited && !attestor.isAlive(who.process())) {
                listener.denied(who, key, name, "process exited or its pid was reused");
                reply.error(Errno.EACCES);
                return;
            }
            Secret content = file == API_KEY ? issued.secretDuplicate() : text(rfc3339(issued.expiresAt()) + "\n");
            serve(reply, who, key, name, issued, content);
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "answering open of " + key + "/" + name + " failed", e);
            reply.error(Errno.EIO);
        }
    }

    public static String rfc3339(Instant t) {
        return DateTimeFormatter.ISO_INSTANT.format(t.truncatedTo(ChronoUnit.SECONDS));
    }

    private static Secret text(String s) {
        return Secret.copyOf(s.getBytes(StandardCharsets.UTF_8));
    }

    private void serve(FuseReply reply, Attestation.Identified who, String key, String name, IssuedKey issued,
                       Secret content) {
        try {
            listener.granted(who, key, name, issued);
        } catch (RuntimeException e) {
            content.close();
            LOG.log(System.Logger.Level.ERROR, "access to " + key + "/" + name + " could not be recorded; denied: "
                    + e.getMessage());
            reply.error(Errno.EIO);
            return;
        }
        long fh = nextHandle.getAndIncrement();
        openFiles.put(fh, content);
        if (!reply.open(fh, OPEN_FLAGS)) {
            Secret gone = openFiles.remove(fh);
            if (gone != null) {
                gone.close();
            }
        }
    }

    @Override
    public void read(FuseRequest req, long node, long fh, long offset, int size, FuseReply reply) {
        Secret content = openFiles.get(fh);
        if (content == null || content.isClosed()) {
            reply.error(Errno.EBADF);
            return;
        }
        reply.data(content, offset, size);
    }

    @Override
    public void flush(FuseRequest req, long node, long fh, FuseReply reply) {
        reply.ok();
    }

    @Override
    public void release(FuseRequest req, long node, long fh, FuseReply reply) {
        Secret content = openFiles.remove(fh);
        if (content != null) {
            content.close();
        }
        reply.ok();
    }

    @Override
    public void opendir(FuseRequest req, long node, int flags, FuseReply reply) {
        DirentList list = new DirentList();
        if (node == ROOT) {
            list.add(ROOT, ".", DirentList.DT_DIR).add(ROOT, "..", DirentList.DT_DIR);
            Attestation a = attestor.attest(req.pid(), req.uid(), req.gid());
            if (a instanceof Attestation.Identified who) {
                Policy p = policy.get();
                for (KeySpec k : p.keys().values()) {
                    if (who.workload().grants(k.name()) && who.workload().readers().refusal(who.process()).isEmpty()) {
                        list.add(dirInode(k.name()), k.name(), DirentList.DT_DIR);
                    }
                }
            }
        } else {
            String key = keyOf(node);
            if (fileOf(node) != 0) {
                reply.error(Errno.ENOTDIR);
                return;
            }
            Decision d = decide(req, key, ".");
            if (d.who() == null) {
                reply.error(d.errno());
                return;
            }
            list.add(node, ".", DirentList.DT_DIR).add(ROOT, "..", DirentList.DT_DIR);
            for (int i = 0; i < FILES.length; i++) {
                list.add(node + i + 1, FILES[i], DirentList.DT_REG);
            }
        }
        long fh = nextHandle.getAndIncrement();
        openDirs.put(fh, list);
        reply.open(fh, 0);
    }

    @Override
    public void readdir(FuseRequest req, long node, long fh, long offset, int size, FuseReply reply) {
        DirentList list = openDirs.get(fh);
        if (list == null) {
            reply.error(Errno.EBADF);
            return;
        }
        reply.dirents(list, offset, size);
    }

    @Override
    public void releasedir(FuseRequest req, long node, long fh, FuseReply reply) {
        openDirs.remove(fh);
        reply.ok();
    }

    @Override
    public void access(FuseRequest req, long node, int mask, FuseReply reply) {
        if ((mask & 2) != 0) {
            reply.error(Errno.EACCES);
            return;
        }
        if (node == ROOT) {
            reply.ok();
            return;
        }
        Decision d = decide(req, keyOf(node), fileOf(node) == 0 ? "." : FILES[Math.min(fileOf(node), FILES.length) - 1]);
        if (d.who() == null) {
            reply.error(d.errno());
        } else {
            reply.ok();
        }
    }

    @Override
    public void statfs(FuseRequest req, long node, FuseReply reply) {
        reply.statfs(policy.get().keys().size() * (FILES.length + 1L) + 1, 255);
    }
}
