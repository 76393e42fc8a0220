package io.keywarden.delivery;

import static io.keywarden.delivery.KeyFsInodes.API_KEY;
import static io.keywarden.delivery.KeyFsInodes.DIRECTORY;
import static io.keywarden.delivery.KeyFsInodes.EXPIRES_AT;
import static io.keywarden.delivery.KeyFsInodes.FILES;
import static io.keywarden.delivery.KeyFsInodes.HEADERS;
import static io.keywarden.delivery.KeyFsInodes.ROOT;
import static io.keywarden.delivery.KeyFsInodes.SPIFFE_ID;
import static io.keywarden.delivery.KeyFsInodes.STATUS;

import io.keywarden.attestation.Attestation;
import io.keywarden.fuse.DirentList;
import io.keywarden.fuse.FuseAttr;
import io.keywarden.fuse.FuseOperations;
import io.keywarden.fuse.FuseReply;
import io.keywarden.fuse.FuseRequest;
import io.keywarden.fuse.FuseSession;
import io.keywarden.linux.Errno;
import io.keywarden.linux.Secret;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * The key file system: a per-caller view of {@code <key>/{api_key,expires_at,spiffe_id,status,headers}}.
 * Every LOOKUP of api_key, OPEN, OPENDIR and ACCESS is decided by the {@link AccessDecider} for the
 * calling process; this class only turns its {@link Decision} into FUSE answers, renders the files
 * and keeps the open handles. An api_key handle reads the issued key's own bytes (the lease's,
 * wiped when it is dropped: no copy per open); every other file's open gets its own copy.
 *
 * <p>{@code api_key} is one inode per (key, workload, generation) ({@link KeyFsInodes}): LOOKUP
 * answers the caller's own current one, and an OPEN of any other (a name the kernel cached for
 * someone else, or for an older key) answers ESTALE, on which the kernel looks the name up again
 * for this caller and retries. Its content is served through the page cache
 * ({@code FOPEN_KEEP_CACHE}): an open costs one OPEN, decided for the caller as ever, and its reads
 * come from the cache (after a key's first seconds, see {@link KeyFsInodes#cacheable}). That is
 * safe because an inode only ever holds one key, its generation's: a new key is served on a new
 * inode ({@link #keyIssued}), and a handle reads only the key it was opened with, so a descriptor
 * never reads a later key; the pages of a key revoked or expired ({@link #keyGone}) are dropped
 * before that returns, and the handles opened on it, marked gone first, read nothing more
 * (ESTALE), so nothing fills those pages again. The other files and directories resolve the same
 * for everyone (so the kernel may cache their names); their content is never cached (direct I/O).
 *
 * <p>Over 300 lines on purpose: one method per FUSE operation, each a few lines of translation;
 * the decisions are {@link AccessDecider}'s and the node ids {@link KeyFsInodes}'.
 *
 * <p>Over 400 lines: every FUSE operation KeyFS answers, each a few lines, beside the inode and
 * handle tables they share.
 */
public final class KeyFs implements FuseOperations {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(KeyFs.class);

    /** Names are caller-independent, so caching them is safe; decisions are never cached. */
    private static final long ENTRY_VALID_NANOS = 5_000_000_000L;
    /**
     * The size api_key reports on a workload's own inode: an upper bound, so that sendfile/splice
     * (which stop at the size) read the whole key; the read comes back short and the kernel takes
     * the real length from it. Shared inodes report 0, as procfs does.
     */
    static final long SPLICE_SIZE = 4096;
    private static final int OPEN_FLAGS = FuseSession.FOPEN_DIRECT_IO | FuseSession.FOPEN_NOFLUSH;
    /** api_key on a workload's own inode: through the page cache, kept across opens. */
    private static final int CACHED_OPEN_FLAGS = FuseSession.FOPEN_KEEP_CACHE | FuseSession.FOPEN_NOFLUSH;
    /** How long a change waits for the kernel to drop an inode's pages (it never waits on a FUSE worker). */
    private static final long DROP_WAIT_MILLIS = 2_000;
    private static final int WRITE_ACCESS = 2;
    private static final int O_ACCMODE = 3;

    private final AccessDecider access;
    private final Clock clock;
    private final long mountTime;
    private final KeyFsInodes inodes = new KeyFsInodes();
    private final Map<Long, OpenFile> openFiles = new ConcurrentHashMap<>();
    private final Map<Long, DirentList> openDirs = new ConcurrentHashMap<>();

    /** An api_key handle's node and the fingerprint of the key it reads (in a handover's state). */
    public record ApiKeyHandle(long node, String fingerprint) {
    }

    /**
     * An open file: the bytes its reads copy ({@code owned}: this file system's own copy, wiped on
     * release; else the issued key's, which its lease wipes), and for api_key the node it was
     * opened on and the fingerprint of its key ({@code null} for other files). {@code content} is
     * null for an api_key handle taken over wiped.
     */
    private static final class OpenFile {
        final Secret content;
        final boolean owned;
        final long node;
        final String fingerprint;
        /** Set (before its pages are dropped) when its key is revoked or expired: it reads nothing more. */
        volatile boolean keyGone;

        OpenFile(Secret content, boolean owned, long node, String fingerprint) {
            this.content = content;
            this.owned = owned;
            this.node = node;
            this.fingerprint = fingerprint;
        }

        /** An api_key handle whose key is gone (revoked, expired, or its bytes already wiped). */
        boolean stale() {
            return fingerprint != null && (keyGone || content == null || content.isClosed());
        }

        void release() {
            if (owned && content != null) {
                content.close();
            }
        }
    }

    private final AtomicLong nextHandle = new AtomicLong(1);
    private volatile FuseSession session;

    public KeyFs(AccessDecider access, Clock clock) {
        this(access, clock, clock.instant().getEpochSecond());
    }

    private KeyFs(AccessDecider access, Clock clock, long mountTime) {
        this.access = access;
        this.clock = clock;
        this.mountTime = mountTime;
    }

    /**
     * Everything a successor daemon needs to answer the kernel as this one would: the node
     * numbering (node ids the kernel caches stay valid), the open handles with their content (a
     * reader in the middle of a file keeps reading it) and the next handle number. The file
     * contents are off-heap copies the caller owns.
     */
    public record State(long mountTime, Map<String, Long> keyIndex, long nextKeyIndex, Map<String, Long> workloadSlot,
                        long nextWorkloadSlot, Map<Long, Secret> openFiles, Map<Long, java.util.List<DirentList.Entry>> openDirs,
                        long nextHandle, Map<Long, Generation> generations, Map<Long, ApiKeyHandle> apiKeyHandles) {
        /** The state of a predecessor that had no api_key generations (null), nor handles through the page cache. */
        public State(long mountTime, Map<String, Long> keyIndex, long nextKeyIndex, Map<String, Long> workloadSlot,
                     long nextWorkloadSlot, Map<Long, Secret> openFiles, Map<Long, java.util.List<DirentList.Entry>> openDirs,
                     long nextHandle) {
            this(mountTime, keyIndex, nextKeyIndex, workloadSlot, nextWorkloadSlot, openFiles, openDirs, nextHandle, null,
                    Map.of());
        }
    }

    /**
     * A workload's api_key generation for one key (handed over with the numbering): its count, and
     * the key it serves (fingerprint and length; null and -1 until one is served on it) since when
     * (epoch milliseconds).
     */
    public record Generation(long count, String fingerprint, int length, long sinceMillis) {
    }

    /** This file system's state for a handover; call once the session is paused. */
    public State export() {
        KeyFsInodes.Numbering n = inodes.numbering();
        Map<Long, Secret> files = new java.util.HashMap<>();
        Map<Long, ApiKeyHandle> apiKeyHandles = new java.util.HashMap<>();
        openFiles.forEach((fh, f) -> {
            if (f.fingerprint != null) {
                apiKeyHandles.put(fh, new ApiKeyHandle(f.node, f.fingerprint));
            }
            if (!f.stale() && f.content != null) {
                try {
                    files.put(fh, f.content.duplicate());
                } catch (IllegalStateException wiped) {
                    // Its key was wiped meanwhile: handed over without content, as a stale handle.
                }
            }
        });
        Map<Long, java.util.List<DirentList.Entry>> dirs = new java.util.HashMap<>();
        openDirs.forEach((fh, list) -> dirs.put(fh, list.entries()));
        return new State(mountTime, n.keyIndex(), n.nextKeyIndex(), n.workloadSlot(), n.nextWorkloadSlot(), files, dirs,
                nextHandle.get(), n.generations(), apiKeyHandles);
    }

    /** A file system that continues {@code s} (taking ownership of its contents) for the mount it was exported from. */
    public static KeyFs continuing(AccessDecider access, Clock clock, State s) {
        KeyFs fs = new KeyFs(access, clock, s.mountTime());
        fs.inodes.continueFrom(new KeyFsInodes.Numbering(s.keyIndex(), s.nextKeyIndex(), s.workloadSlot(),
                s.nextWorkloadSlot(), s.generations()));
        s.openFiles().forEach((fh, content) -> {
            ApiKeyHandle h = s.apiKeyHandles().get(fh);
            fs.openFiles.put(fh, new OpenFile(content, true, h == null ? 0 : h.node(), h == null ? null : h.fingerprint()));
        });
        s.apiKeyHandles().forEach((fh, h) -> fs.openFiles.putIfAbsent(fh, new OpenFile(null, true, h.node(),
                h.fingerprint())));
        s.openDirs().forEach((fh, entries) -> {
            DirentList l = new DirentList();
            entries.forEach(e -> l.add(e.ino(), e.name(), e.type()));
            fs.openDirs.put(fh, l);
        });
        fs.nextHandle.set(s.nextHandle());
        return fs;
    }

    /** Open handles (files and directories): for tests and status. */
    public int openHandles() {
        return openFiles.size() + openDirs.size();
    }

    /** Gives KeyFS the mounted session, so it can tell the kernel when a key's content changed. */
    public void attach(FuseSession s) {
        this.session = s;
    }

    /**
     * {@code workload}'s key for {@code key} is now {@code issued} (before any open is given it): it
     * is served on a new generation of its api_key inode when the current one served another key,
     * whose pages the kernel drops.
     */
    public void keyIssued(String workload, String key, IssuedKey issued) {
        long[] retired = {0};
        inodes.serve(key, workload, issued.fingerprint(), issued.length(), clock.millis(), retired);
        drop(retired[0]);
    }

    /**
     * {@code workload}'s key of {@code fingerprint} for {@code key} is revoked or expired: if it is
     * the one served, its inode's generation is retired and the kernel has dropped its pages when
     * this returns (bounded; never waited for on a FUSE worker, which the kernel may need to answer
     * a READ of that inode first).
     */
    public void keyGone(String workload, String key, String fingerprint) {
        // Retired if it is the one served (an open decided before this and answered after it
        // finds its node gone, see answer); a key an older generation served (a refresh's previous
        // key, revoked when its grace ends) has its handles found by their key.
        long retired = inodes.known(key) ? inodes.retire(key, workload, fingerprint) : 0;
        java.util.Set<Long> nodes = new java.util.HashSet<>();
        if (retired != 0) {
            nodes.add(retired);
        }
        // The handles reading the key that is gone: marked (and a copy of their own wiped) before
        // the pages are dropped below, so that nothing refills them (their reads answer ESTALE).
        openFiles.forEach((fh, f) -> {
            if (fingerprint.equals(f.fingerprint)) {
                f.keyGone = true;
                f.release();
                nodes.add(f.node);
            }
        });
        nodes.forEach(this::drop);
    }

    private void drop(long node) {
        FuseSession s = session;
        if (node == 0 || s == null) {
            return;
        }
        java.util.concurrent.CompletableFuture<Void> dropped = s.invalidateInode(node);
        if (FuseSession.onWorker()) {
            return;
        }
        try {
            dropped.get(DROP_WAIT_MILLIS, java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
            LOG.warn("the kernel did not confirm dropping the pages of api_key inode {} within {} ms: {}", node,
                    DROP_WAIT_MILLIS, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static Caller caller(FuseRequest req) {
        return new Caller(req.pid(), req.uid(), req.gid());
    }

    private FuseAttr attrOf(long node) {
        if (node == ROOT || KeyFsInodes.fileOf(node) == DIRECTORY) {
            return FuseAttr.directory(node, 0555, mountTime);
        }
        if (KeyFsInodes.isWorkloadOwn(node)) {
            // The key's length once its generation served one (a size that stays the same keeps the
            // cache), an upper bound before: the first read comes back short and sets the size.
            int length = inodes.length(node);
            return FuseAttr.file(node, length >= 0 ? length : SPLICE_SIZE, 0444, mountTime);
        }
        return FuseAttr.file(node, 0, 0444, mountTime);
    }

    /** Runs {@code answer} with the caller's attestation; an exception answers EIO, never a worker's death. */
    private void withCaller(FuseRequest req, FuseReply reply, Consumer<Attestation> answer) {
        access.attest(caller(req)).whenComplete((a, err) -> {
            if (err != null) {
                LOG.error("attesting " + req + " failed", err);
                reply.error(Errno.EIO);
                return;
            }
            try {
                answer.accept(a);
            } catch (RuntimeException e) {
                LOG.error("answering " + req + " failed", e);
                reply.error(Errno.EIO);
            }
        });
    }

    @Override
    public void lookup(FuseRequest req, long parent, String name, FuseReply reply) {
        if (parent == ROOT) {
            if (!access.exists(name)) {
                reply.error(Errno.ENOENT);
                return;
            }
            long ino = inodes.directory(name);
            reply.entry(ino, attrOf(ino), ENTRY_VALID_NANOS, ENTRY_VALID_NANOS);
            return;
        }
        String key = inodes.keyOf(parent);
        if (key == null || KeyFsInodes.fileOf(parent) != DIRECTORY) {
            reply.error(Errno.ENOENT);
            return;
        }
        int file = fileNumber(name);
        if (file == 0) {
            reply.error(Errno.ENOENT);
        } else if (file != API_KEY) {
            long ino = KeyFsInodes.file(parent, file);
            reply.entry(ino, attrOf(ino), ENTRY_VALID_NANOS, ENTRY_VALID_NANOS);
        } else {
            // The caller's own api_key inode when it may read the key; the shared one (size 0) otherwise.
            withCaller(req, reply, a -> {
                long ino = access.permits(a, key) ? inodes.apiKey(key, ((Attestation.Identified) a).workload().name())
                        : KeyFsInodes.file(parent, API_KEY);
                reply.entry(ino, inodes.generationOf(ino), attrOf(ino), ENTRY_VALID_NANOS, ENTRY_VALID_NANOS);
            });
        }
    }

    private static int fileNumber(String name) {
        for (int i = 0; i < FILES.length; i++) {
            if (FILES[i].equals(name)) {
                return i + 1;
            }
        }
        return 0;
    }

    @Override
    public void getattr(FuseRequest req, long node, FuseReply reply) {
        if (node != ROOT && (inodes.keyOf(node) == null || KeyFsInodes.fileOf(node) > FILES.length)) {
            reply.error(Errno.ENOENT);
            return;
        }
        reply.attr(attrOf(node), ENTRY_VALID_NANOS);
    }

    /** The FUSE answer to a decision that is not a grant. */
    private static int errno(Decision d) {
        if (d instanceof Decision.NoSuchKey) {
            return Errno.ENOENT;
        }
        if (d instanceof Decision.Denied) {
            return Errno.EACCES;
        }
        return Errno.EIO;
    }

    @Override
    public void open(FuseRequest req, long node, int flags, FuseReply reply) {
        int file = KeyFsInodes.fileOf(node);
        String key = inodes.keyOf(node);
        if (node == ROOT || file == DIRECTORY) {
            reply.error(Errno.EISDIR);
            return;
        }
        if (key == null || file > FILES.length) {
            reply.error(Errno.ENOENT);
            return;
        }
        if ((flags & O_ACCMODE) != 0) {
            reply.error(Errno.EROFS);
            return;
        }
        String name = FILES[file - 1];
        // Answered on this thread when nothing must wait (every open of a cached process and a
        // current key): no stage and no callback object on the way.
        Attestation now = access.attestNow(req.pid(), req.uid(), req.gid());
        if (now != null) {
            openAs(now, reply, key, name, file, node);
        } else {
            withCaller(req, reply, a -> openAs(a, reply, key, name, file, node));
        }
    }

    /** The OPEN of {@code node} ({@code name} of {@code key}) by {@code a}; a failure answers EIO. */
    private void openAs(Attestation a, FuseReply reply, String key, String name, int file, long node) {
        try {
            Decision d = access.authorize(a, key, name);
            if (!(d instanceof Decision.Granted g)) {
                reply.error(errno(d));
                return;
            }
            Attestation.Identified who = g.who();
            if (file == API_KEY && node != inodes.apiKey(key, who.workload().name())) {
                // A name cached for another caller (or the shared inode): look it up again for this one.
                reply.error(Errno.ESTALE);
                return;
            }
            switch (file) {
                case SPIFFE_ID -> answer(reply, access.grant(who, key, name, null), text(who.spiffeId() + "\n"));
                case STATUS -> answer(reply, access.grant(who, key, name, null),
                        text(access.status(who.workload(), key).line() + "\n"));
                default -> {
                    CompletableFuture<IssuedKey> issuance = access.issuance(who, key);
                    if (issuance.isDone()) {
                        opened(reply, who, key, name, file, node, access.decide(who, key, name, issuance));
                    } else {
                        access.decideWhenIssued(who, key, name, issuance).whenComplete((decided, err) -> {
                            if (err != null) {
                                LOG.error("answering open of " + key + "/" + name + " failed", err);
                                reply.error(Errno.EIO);
                            } else {
                                opened(reply, who, key, name, file, node, decided);
                            }
                        });
                    }
                }
            }
        } catch (RuntimeException e) {
            LOG.error("answering open of " + key + "/" + name + " failed", e);
            reply.error(Errno.EIO);
        }
    }

    /** Answers an OPEN of a key's file with {@code decided} (recorded); a failure answers EIO. */
    private void opened(FuseReply reply, Attestation.Identified who, String key, String name, int file, long node,
                        Decision decided) {
        try {
            if (file == API_KEY && decided instanceof Decision.Granted kg) {
                // Served on the inode of this key's generation only (a key issued by this open, or
                // since the lookup, has a newer one: looked up again).
                long[] retired = {0};
                long on = inodes.serve(key, who.workload().name(), kg.issued().fingerprint(), kg.issued().length(),
                        clock.millis(), retired);
                drop(retired[0]);
                if (on != node) {   // 0: a key revoked since this open obtained it
                    reply.error(Errno.ESTALE);
                    return;
                }
                answer(reply, new OpenFile(kg.issued().secret(), false, node, kg.issued().fingerprint()),
                        inodes.cacheable(node, clock.millis()));
            } else if (decided instanceof Decision.Granted kg) {
                answer(reply, decided, file == HEADERS ? text(Header.file(kg.issued().headers()))
                        : text(rfc3339(kg.issued().expiresAt()) + "\n"));
            } else {
                reply.error(errno(decided));
            }
        } catch (RuntimeException e) {
            LOG.error("answering open of " + key + "/" + name + " failed", e);
            reply.error(Errno.EIO);
        }
    }

    public static String rfc3339(Instant t) {
        return DateTimeFormatter.ISO_INSTANT.format(t.truncatedTo(ChronoUnit.SECONDS));
    }

    private static Secret text(String s) {
        return Secret.copyOf(s.getBytes(StandardCharsets.UTF_8));
    }

    /** Opens a handle on {@code content} (owned) when the (recorded) decision is a grant; wipes it otherwise. */
    private void answer(FuseReply reply, Decision d, Secret content) {
        if (!(d instanceof Decision.Granted)) {
            content.close();
            reply.error(errno(d));
            return;
        }
        answer(reply, new OpenFile(content, true, 0, null), false);
    }

    /**
     * Opens a handle on {@code f}, granted; {@code cached}: api_key on its generation's inode, read
     * through the page cache.
     */
    private void answer(FuseReply reply, OpenFile f, boolean cached) {
        long fh = nextHandle.getAndIncrement();
        openFiles.put(fh, f);
        if (f.fingerprint != null && inodes.gone(f.node)) {
            // Its key was revoked or expired while this open was answered: not served.
            openFiles.remove(fh);
            reply.error(Errno.ESTALE);
            return;
        }
        if (!reply.open(fh, cached ? CACHED_OPEN_FLAGS : OPEN_FLAGS)) {
            OpenFile gone = openFiles.remove(fh);
            if (gone != null) {
                gone.release();
            }
        }
    }

    @Override
    public void read(FuseRequest req, long node, long fh, long offset, int size, FuseReply reply) {
        OpenFile f = openFiles.get(fh);
        if (f != null && f.stale()) {
            // Opened on a key revoked or expired since: nothing refills its pages (splice reads
            // through them even on a direct handle).
            reply.error(Errno.ESTALE);
            return;
        }
        if (f == null || f.content.isClosed()) {
            reply.error(Errno.EBADF);
            return;
        }
        // A handle reads the key of the generation it was opened on, and only that one ever
        // fills its inode's pages: a descriptor never reads a later key. (Wiped between the look
        // above and the copy, the reply answers ESTALE.)
        reply.data(f.content, offset, size);
    }

    @Override
    public void flush(FuseRequest req, long node, long fh, FuseReply reply) {
        reply.ok();
    }

    @Override
    public void release(FuseRequest req, long node, long fh, FuseReply reply) {
        OpenFile f = openFiles.remove(fh);
        if (f != null) {
            f.release();
        }
        reply.ok();
    }

    @Override
    public void opendir(FuseRequest req, long node, int flags, FuseReply reply) {
        if (node == ROOT) {
            withCaller(req, reply, a -> {
                DirentList list = new DirentList().add(ROOT, ".", DirentList.DT_DIR).add(ROOT, "..", DirentList.DT_DIR);
                for (String k : access.visibleKeys(a)) {
                    list.add(inodes.directory(k), k, DirentList.DT_DIR);
                }
                openDir(reply, list);
            });
            return;
        }
        if (KeyFsInodes.fileOf(node) != DIRECTORY) {
            reply.error(Errno.ENOTDIR);
            return;
        }
        String key = inodes.keyOf(node);
        if (key == null) {
            reply.error(Errno.ENOENT);
            return;
        }
        withCaller(req, reply, a -> {
            Decision d = access.authorize(a, key, ".");
            if (!(d instanceof Decision.Granted)) {
                reply.error(errno(d));
                return;
            }
            DirentList list = new DirentList().add(node, ".", DirentList.DT_DIR).add(ROOT, "..", DirentList.DT_DIR);
            for (int i = 0; i < FILES.length; i++) {
                list.add(KeyFsInodes.file(node, i + 1), FILES[i], DirentList.DT_REG);
            }
            openDir(reply, list);
        });
    }

    private void openDir(FuseReply reply, DirentList list) {
        long fh = nextHandle.getAndIncrement();
        openDirs.put(fh, list);
        if (!reply.open(fh, 0)) {
            openDirs.remove(fh);
        }
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
        if ((mask & WRITE_ACCESS) != 0) {
            reply.error(Errno.EACCES);
            return;
        }
        if (node == ROOT) {
            reply.ok();
            return;
        }
        String key = inodes.keyOf(node);
        if (key == null) {
            reply.error(Errno.ENOENT);
            return;
        }
        withCaller(req, reply, a -> {
            Decision d = access.authorize(a, key, KeyFsInodes.nameOf(node));
            if (d instanceof Decision.Granted) {
                reply.ok();
            } else {
                reply.error(errno(d));
            }
        });
    }

    @Override
    public void statfs(FuseRequest req, long node, FuseReply reply) {
        reply.statfs(access.keyCount() * (FILES.length + 1L) + 1, 255);
    }
}
