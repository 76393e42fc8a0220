package io.keywarden.daemon.lifecycle;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.issuer.Lease;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyBlockedException;
import io.keywarden.delivery.KeySource;
import io.keywarden.delivery.KeyUnavailableException;
import io.keywarden.delivery.LeaseStatus;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.random.RandomGenerator;

/**
 * The lease core: one lease per (workload, key) on the node ({@link LeaseSlot}), shared by all
 * the workload's processes. Issues on first need from the key's issuer instance, refreshes at
 * {@code refreshAt} of the lifetime, overlaps old and new keys (the old lease is revoked once every
 * process that opened it has opened the new one or exited ({@link Openers}), or when
 * {@code grace} ends), backs off on issuer errors, serves until expiry and then fails closed,
 * refuses blocked workloads ({@link KillSwitch}), revokes idle leases ({@link #sweep}, run every
 * second once {@link #start}ed) and, on shutdown, all of them.
 *
 * <p>The read path ({@link #current}) touches one volatile field when a valid key exists; every
 * state change happens under the slot's monitor, on the {@link Scheduler}'s threads; issuer calls
 * and events (ledger writes) run outside it.
 *
 * <p>Over 300 lines on purpose: it is the state machine's transitions, which share one locking
 * discipline and read best side by side; the parts with state of their own live in
 * {@link LeaseSlot}, {@link Openers} and {@link KillSwitch}.
 *
 * <p>Over 400 lines: the lease state machine (issue, refresh, overlap, revoke, expiry, sweep,
 * handover export and adoption) on one set of slots.
 */
public final class LeaseManager implements KeySource, AutoCloseable {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(LeaseManager.class);
    static final Duration SWEEP = Duration.ofSeconds(1);

    private final IssuerRegistry issuers;
    private final Supplier<Policy> policy;
    private final Clock clock;
    private final Scheduler scheduler;
    private final RandomGenerator random;
    private final LeaseEvents events;
    private final Predicate<ProcessInfo> alive;
    private final KillSwitch killSwitch;
    private final Map<LeaseSlot.Id, LeaseSlot> slots = new ConcurrentHashMap<>();
    private volatile boolean closed;
    private final Unrevoked unrevoked;
    private volatile Scheduler.Task sweepTask;

    public LeaseManager(IssuerRegistry issuers, Supplier<Policy> policy, Clock clock, Scheduler scheduler,
                        RandomGenerator random, LeaseEvents events, Predicate<ProcessInfo> alive, KillSwitch killSwitch) {
        this.issuers = issuers;
        this.policy = policy;
        this.clock = clock;
        this.unrevoked = new Unrevoked(clock);
        this.scheduler = scheduler;
        this.random = random;
        this.events = events;
        this.alive = alive;
        this.killSwitch = killSwitch;
    }

    /** One issuer for every key, sweeping at once (tests and benchmarks). */
    public LeaseManager(Issuer issuer, Supplier<Policy> policy, Clock clock, Scheduler scheduler, RandomGenerator random,
                        LeaseEvents events, Predicate<ProcessInfo> alive) {
        this(IssuerRegistry.single(issuer), policy, clock, scheduler, random, events, alive, new KillSwitch());
        start();
    }

    /** Starts the sweeper (idle revocation, exited openers, policy removals). */
    public LeaseManager start() {
        scheduleSweep();
        return this;
    }

    public KillSwitch killSwitch() {
        return killSwitch;
    }

    private LeaseSlot slot(Workload w, String key, boolean eager) {
        LeaseSlot.Id id = new LeaseSlot.Id(w.name(), key);
        LeaseSlot s = slots.get(id);
        if (s == null) {
            s = slots.computeIfAbsent(id, k -> new LeaseSlot(w, key, eager));
        }
        s.workload = w;
        return s;
    }

    @Override
    public CompletionStage<IssuedKey> current(Workload workload, String key, ProcessInfo opener) {
        if (closed) {
            return CompletableFuture.failedFuture(new KeyUnavailableException("keywarden is shutting down"));
        }
        Optional<String> block = killSwitch.reason(workload.name());
        if (block.isPresent()) {
            return CompletableFuture.failedFuture(new KeyBlockedException("blocked by " + block.get()));
        }
        LeaseSlot s = slot(workload, key, false);
        Lease l = s.validAt(clock.millis());
        if (l != null) {
            noteOpener(s, l, opener);
            return CompletableFuture.completedFuture(l.key());
        }
        CompletableFuture<Lease> f;
        synchronized (s) {
            l = s.validAt(clock.millis());
            if (l != null) {
                noteOpener(s, l, opener);
                return CompletableFuture.completedFuture(l.key());
            }
            if (s.inflight == null && s.retryTask != null && s.lastError != null) {
                // Backing off: answer with the reason now instead of hammering the issuer per open.
                return CompletableFuture.failedFuture(new KeyUnavailableException(s.lastError));
            }
            f = s.inflight != null ? s.inflight : startIssue(s, opener);
        }
        return f.thenApply(lease -> {
            noteOpener(s, lease, opener);
            return lease.key();
        });
    }

    /** Issues now for a workload that is served eagerly (tmpfs delivery): not tied to openers. */
    public CompletionStage<Lease> ensure(Workload workload, String key) {
        LeaseSlot s = slot(workload, key, true);
        synchronized (s) {
            Lease l = s.validAt(clock.millis());
            if (l != null) {
                return CompletableFuture.completedFuture(l);
            }
            return s.inflight != null ? s.inflight : startIssue(s, null);
        }
    }

    private void noteOpener(LeaseSlot s, Lease l, ProcessInfo p) {
        if (p == null) {
            return;
        }
        s.idleSince = null;
        if (s.current == l && s.openers.opened(p)) {
            scheduler.execute(() -> revokePrevious(s, "every process that opened it has moved to the new key"));
        }
    }

    /** Under the slot's monitor. */
    private CompletableFuture<Lease> startIssue(LeaseSlot s, ProcessInfo opener) {
        CompletableFuture<Lease> f = claimIssue(s);
        scheduler.execute(() -> issue(s, f, opener));
        return f;
    }

    /** Under the slot's monitor: an issuance is in flight from now; the caller runs {@link #issue}. */
    private static CompletableFuture<Lease> claimIssue(LeaseSlot s) {
        CompletableFuture<Lease> f = new CompletableFuture<>();
        s.inflight = f;
        LeaseSlot.cancel(s.retryTask);
        s.retryTask = null;
        return f;
    }

    private void issue(LeaseSlot s, CompletableFuture<Lease> f, ProcessInfo opener) {
        KeySpec spec = policy.get().keys().get(s.keyName);
        if (spec == null || !s.workload.grants(s.keyName)) {
            fail(s, f, "key " + s.keyName + " is no longer granted to " + s.workloadName, false);
            return;
        }
        Issuer issuer = null;
        try {
            issuer = issuers.forKey(spec);
            Lease lease = issuer.issue(s.workload, spec, opener).from(issuer);
            issued(s, f, lease, spec);
        } catch (IssuerException e) {
            fail(s, f, e.getMessage(), e.retryable());
        } catch (RuntimeException e) {
            LOG.error("issuer " + (issuer == null ? "?" : issuer.name())
                    + " failed unexpectedly", e);
            fail(s, f, "issuer error: " + e.getClass().getSimpleName(), true);
        }
    }

    private void issued(LeaseSlot s, CompletableFuture<Lease> f, Lease lease, KeySpec spec) {
        Lease prev;
        Lease older = null;
        boolean overlap;
        synchronized (s) {
            prev = s.current;
            Instant now = clock.instant();
            overlap = prev != null && now.isBefore(prev.expiresAt());
            if (overlap) {
                older = s.previous;
                LeaseSlot.cancel(s.previousRevoke);
                s.previous = prev;
                s.openers.rotate();
                Instant graceEnd = now.plus(spec.grace());
                s.previousRevoke = scheduler.at(graceEnd.isBefore(prev.expiresAt()) ? graceEnd : prev.expiresAt(),
                        () -> revokePrevious(s, "grace ended"));
            } else if (prev != null) {
                older = prev;
                s.openers.resetCurrent();
            }
            s.current = lease;
            s.failures = 0;
            s.lastError = null;
            s.lastRefresh = now;
            s.inflight = null;
            LeaseSlot.cancel(s.refreshTask);
            LeaseSlot.cancel(s.expiryTask);
            s.refreshTask = scheduler.at(Timing.refreshTime(lease.issuedAt(), lease.expiresAt(), spec.refreshAt(), random),
                    () -> refresh(s, lease));
            s.expiryTask = scheduler.at(lease.expiresAt(), () -> expire(s, lease));
        }
        events.issued(s.workload, s.keyName, lease, prev);
        if (older != null) {
            revoke(s, older, RevokeReason.REFRESHED, "superseded");
        }
        if (overlap && !s.eager && s.openers.previousEmpty()) {
            revokePrevious(s, "no live process holds it");
        }
        f.complete(lease);
    }

    private void fail(LeaseSlot s, CompletableFuture<Lease> f, String reason, boolean retryable) {
        Lease current;
        synchronized (s) {
            current = s.current;
            s.failures++;
            s.lastError = reason;
            s.inflight = null;
            if (!closed) {
                Duration wait = Timing.backoff(s.failures, random);
                s.retryTask = scheduler.at(clock.instant().plus(wait), () -> retry(s));
            }
        }
        events.issueFailed(s.workload, s.keyName, current, reason, retryable);
        f.completeExceptionally(new KeyUnavailableException(reason));
    }

    // Timed tasks run on the scheduler's blocking threads: a retry or refresh issues right there
    // (outside the slot's monitor) rather than handing the issuer call to another thread.

    private void retry(LeaseSlot s) {
        CompletableFuture<Lease> f;
        synchronized (s) {
            s.retryTask = null;
            if (closed || s.inflight != null || slots.get(s.id()) != s) {
                return;
            }
            boolean needed = s.eager || s.current != null || !s.openers.currentEmpty();
            if (!needed) {
                return;
            }
            f = claimIssue(s);
        }
        issue(s, f, null);
    }

    private void refresh(LeaseSlot s, Lease due) {
        CompletableFuture<Lease> f;
        synchronized (s) {
            if (closed || s.current != due || s.inflight != null) {
                return;
            }
            f = claimIssue(s);
        }
        issue(s, f, null);
    }

    private void expire(LeaseSlot s, Lease lease) {
        synchronized (s) {
            if (s.current != lease) {
                return;
            }
            s.lastError = s.lastError == null ? "key expired at " + lease.expiresAt() + " and was not refreshed"
                    : "key expired at " + lease.expiresAt() + "; refresh failed: " + s.lastError;
        }
        events.expired(s.workload, s.keyName, lease);
    }

    private void revokePrevious(LeaseSlot s, String reason) {
        Lease p;
        synchronized (s) {
            p = s.previous;
            if (p == null) {
                return;
            }
            s.previous = null;
            LeaseSlot.cancel(s.previousRevoke);
            s.previousRevoke = null;
            s.openers.clearPrevious();
        }
        revoke(s, p, RevokeReason.REFRESHED, reason);
    }

    /** Revokes at the issuer instance that issued it; the key's bytes are wiped whatever happens. */
    private void revoke(LeaseSlot s, Lease lease, RevokeReason code, String reason) {
        try {
            revokeAttempt(s.workload, s.keyName, lease, code, reason, 1);
        } finally {
            // Dropped from its slot: nothing serves it again, so its bytes are wiped now (a revoke needs
            // only the lease's id and the issuer's own state).
            lease.key().destroy();
        }
    }

    /** The wait before revoke attempt {@code attempt + 1}: 2 s, doubling, at most 5 minutes. */
    static java.time.Duration revokeBackoff(int attempt) {
        return java.time.Duration.ofSeconds(Math.min(300, 1L << Math.min(attempt, 9)));
    }

    /**
     * One attempt to revoke {@code lease}. A failure is never only logged: it is an event (the ledger's
     * {@code key.revoke_failed}, a metric) and the revoke is tried again with backoff while the lease
     * is alive and this daemon runs (a key the issuer still honours must not be forgotten); after the
     * last attempt the record says the key lives until its expiry.
     */
    private void revokeAttempt(Workload w, String keyName, Lease lease, RevokeReason code, String reason, int attempt) {
        Optional<Issuer> from = issuers.named(lease.issuer());
        if (from.isEmpty()) {
            LOG.warn("lease " + lease.leaseId() + " names issuer '" + lease.issuer()
                    + "', which is not configured: left to expire");
            return;
        }
        try {
            from.get().revoke(lease);
            unrevoked.revoked(lease.leaseId());
            events.revoked(w, keyName, lease, code, reason);
        } catch (IssuerException e) {
            Instant next = clock.instant().plus(revokeBackoff(attempt));
            boolean again = !closed && next.isBefore(lease.expiresAt());
            LOG.warn("revoking " + lease.leaseId() + " failed (attempt " + attempt + "): " + e.getMessage()
                    + (again ? "; tried again at " + next : "; the key lives until it expires at " + lease.expiresAt()));
            unrevoked.failed(w, keyName, lease, code, reason, e.getMessage(), attempt, again ? next : null);
            events.revokeFailed(w, keyName, lease, e.getMessage(), attempt, again ? next : null);
            if (again) {
                retryRevoke(next, w, keyName, lease, code, reason, attempt + 1);
            }
        }
    }

    private void retryRevoke(Instant at, Workload w, String keyName, Lease lease, RevokeReason code, String reason,
                             int attempt) {
        // Not after a handover or shutdown: the successor (or nobody) owns the retry then.
        scheduler.at(at, () -> {
            if (!closed) {
                revokeAttempt(w, keyName, lease, code, reason, attempt);
            }
        });
    }

    /**
     * Continues the revokes a predecessor daemon had not completed (the leases only: their keys were
     * wiped): each is listed as unrevoked again and retried at its next try, as it would have been.
     */
    public void adoptUnrevoked(List<Unrevoked.Entry> handed) {
        Policy p = policy.get();
        Instant now = clock.instant();
        for (Unrevoked.Entry e : handed) {
            unrevoked.adopt(e);
            if (e.nextTry() != null) {
                Workload w = p.workload(e.workload()).orElseGet(() -> handedOverWorkload(e.workload(), e.spiffeId()));
                retryRevoke(e.nextTry().isAfter(now) ? e.nextTry() : now, w, e.key(), e.lease(), e.code(), e.reason(),
                        e.attempts() + 1);
            }
        }
    }

    /** A workload the successor's policy no longer names, as the predecessor knew it. */
    private static Workload handedOverWorkload(String name, String spiffeId) {
        return new Workload(name, io.keywarden.policy.SpiffeId.parse(spiffeId), List.of(), List.of(),
                io.keywarden.policy.Readers.ANY, new io.keywarden.policy.yaml.Location("(handed over)", 0, 0));
    }

    /** The workloads refused keys, by name, with why (set through {@code blocks.BlockList} only). */
    public Map<String, String> blocked() {
        return killSwitch.all();
    }

    /** Revokes a workload's leases now (kill switch, policy change, idle); the next open issues anew. */
    public int revokeNow(String workload, String key, RevokeReason code, String reason) {
        List<LeaseSlot> hit = new ArrayList<>();
        for (LeaseSlot s : slots.values()) {
            if (s.workloadName.equals(workload) && (key == null || s.keyName.equals(key))) {
                hit.add(s);
            }
        }
        int n = 0;
        for (LeaseSlot s : hit) {
            n += drop(s, code, reason);
        }
        return n;
    }

    private int drop(LeaseSlot s, RevokeReason code, String reason) {
        List<Lease> leases = new ArrayList<>();
        synchronized (s) {
            slots.remove(s.id(), s);
            if (s.current != null) {
                leases.add(s.current);
            }
            if (s.previous != null) {
                leases.add(s.previous);
            }
            s.current = null;
            s.previous = null;
            s.cancelTimers();
        }
        leases.forEach(l -> revoke(s, l, code, reason));
        return leases.size();
    }

    private void scheduleSweep() {
        if (!closed) {
            sweepTask = scheduler.at(clock.instant().plus(SWEEP), () -> {
                sweep();
                scheduleSweep();
            });
        }
    }

    /** Forgets exited openers; revokes overlap leases nobody holds and leases idle past idleRevoke. */
    void sweep() {
        Policy p = policy.get();
        Instant now = clock.instant();
        for (LeaseSlot s : slots.values()) {
            if (p.workload(s.workloadName).map(w -> !w.grants(s.keyName)).orElse(true)) {
                drop(s, RevokeReason.POLICY, "removed from the policy");
                continue;
            }
            if (s.eager) {
                continue;
            }
            s.openers.forgetDead(alive);
            boolean previousHeld;
            boolean idleTooLong = false;
            synchronized (s) {
                previousHeld = s.previous == null || !s.openers.previousEmpty();
                if (s.current == null || !s.openers.currentEmpty()) {
                    s.idleSince = null;
                } else if (s.idleSince == null) {
                    s.idleSince = now;
                } else {
                    idleTooLong = !now.isBefore(s.idleSince.plus(p.idleRevoke()));
                }
            }
            if (!previousHeld) {
                revokePrevious(s, "every process that opened it has moved to the new key or exited");
            }
            if (idleTooLong) {
                drop(s, RevokeReason.IDLE, "idle: no process of the workload alive for " + p.idleRevoke().toSeconds()
                        + "s");
            }
        }
    }

    @Override
    public LeaseStatus status(Workload workload, String key) {
        Optional<String> block = killSwitch.reason(workload.name());
        if (block.isPresent()) {
            return new LeaseStatus.Blocked(block.get());
        }
        LeaseSlot s = slots.get(new LeaseSlot.Id(workload.name(), key));
        Lease valid = s == null ? null : s.validAt(clock.millis());
        if (valid != null) {
            return valid.revocable() ? LeaseStatus.OK : new LeaseStatus.Ok(false);
        }
        if (s == null) {
            return LeaseStatus.OK;
        }
        String e = s.lastError;
        return e == null ? LeaseStatus.OK : new LeaseStatus.Failing(e);
    }

    /** The leases whose revoke the issuer has not (yet) taken. */
    public Unrevoked unrevoked() {
        return unrevoked;
    }

    /** A view of every lease for {@code status}: never secrets. */
    public List<LeaseView> view() {
        List<LeaseView> out = new ArrayList<>();
        for (LeaseSlot s : slots.values()) {
            Lease l = s.current;
            out.add(new LeaseView(s.workloadName, s.keyName, l == null ? null : l.leaseId(),
                    l == null ? null : l.key().fingerprint(), l == null ? null : l.providerKeyId().orElse(null),
                    l == null ? null : l.expiresAt(), s.lastRefresh, s.lastError, s.openers.currentCount(),
                    l == null ? null : l.issuer(), l == null ? null : l.providerExpiresAt().orElse(null)));
        }
        return out;
    }

    public record LeaseView(String workload, String key, String leaseId, String fingerprint, String providerKeyId,
                            Instant expiresAt, Instant lastRefresh, String lastError, int openers, String issuer,
                            Instant providerExpiresAt) {
    }

    /**
     * One slot as a successor daemon takes it over: its leases (keys included: this record is
     * only ever passed in memory, never logged or written) and who holds them.
     */
    public record HandedSlot(String workload, String spiffeId, String key, boolean eager, Lease current, Lease previous,
                             Instant lastRefresh, List<ProcessInfo> holders, List<ProcessInfo> previousHolders) {
        @Override
        public String toString() {
            return "HandedSlot[" + workload + "/" + key + " " + current + "]";
        }
    }

    /**
     * Every slot with a lease, for a handover: call after {@link #shutdown shutdown(false)} so no
     * timer changes them meanwhile. The leases stay this manager's until it is dropped; the
     * successor gets them with {@link #adopt}.
     */
    public List<HandedSlot> export() {
        List<HandedSlot> out = new ArrayList<>();
        for (LeaseSlot s : slots.values()) {
            synchronized (s) {
                if (s.current != null || s.previous != null) {
                    out.add(new HandedSlot(s.workloadName, s.workload.spiffeId().toString(), s.keyName, s.eager, s.current, s.previous, s.lastRefresh,
                            s.openers.holders(false), s.openers.holders(true)));
                }
            }
        }
        return out;
    }

    /**
     * Continues the leases a predecessor daemon handed over, with their timers as if they had been
     * issued here: refresh at the key's {@code refreshAt}, expiry, the previous lease revoked when
     * its grace ends (counted from now). Slots whose workload or key left the policy meanwhile
     * are revoked by the next sweep, as any other.
     */
    public void adopt(List<HandedSlot> handed) {
        Policy p = policy.get();
        Instant now = clock.instant();
        for (HandedSlot h : handed) {
            Optional<Workload> w = p.workload(h.workload());
            KeySpec spec = p.keys().get(h.key());
            // A workload the successor's policy no longer has keeps its identity until the sweep revokes it.
            LeaseSlot s = new LeaseSlot(w.orElseGet(() -> handedOverWorkload(h.workload(), h.spiffeId())), h.key(),
                    h.eager());
            synchronized (s) {
                s.current = h.current();
                s.previous = h.previous();
                s.lastRefresh = h.lastRefresh();
                s.openers.adopt(h.holders(), h.previousHolders());
                Lease l = h.current();
                if (l != null && spec != null) {
                    s.refreshTask = scheduler.at(Timing.refreshTime(l.issuedAt(), l.expiresAt(), spec.refreshAt(), random),
                            () -> refresh(s, l));
                    s.expiryTask = scheduler.at(l.expiresAt(), () -> expire(s, l));
                }
                if (h.previous() != null) {
                    Instant graceEnd = now.plus(spec == null ? Duration.ZERO : spec.grace());
                    s.previousRevoke = scheduler.at(graceEnd.isBefore(h.previous().expiresAt()) ? graceEnd
                            : h.previous().expiresAt(), () -> revokePrevious(s, "grace ended"));
                }
            }
            slots.put(s.id(), s);
        }
    }

    /** Stops all timers; revokes every lease when {@code revokeAll}. */
    public void shutdown(boolean revokeAll) {
        closed = true;
        LeaseSlot.cancel(sweepTask);
        for (LeaseSlot s : List.copyOf(slots.values())) {
            if (revokeAll) {
                drop(s, RevokeReason.SHUTDOWN, "shutdown");
            } else {
                synchronized (s) {
                    s.cancelTimers();
                }
            }
        }
    }

    @Override
    public void close() {
        shutdown(true);
    }
}
