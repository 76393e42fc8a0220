package io.keywarden.daemon.lifecycle;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.daemon.issuer.Issuer;
import io.keywarden.daemon.issuer.IssuerException;
import io.keywarden.daemon.issuer.Lease;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyBlockedException;
import io.keywarden.delivery.KeySource;
import io.keywarden.delivery.KeyUnavailableException;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.random.RandomGenerator;

/**
 * One lease per (workload, key) on the node, shared by all the workload's processes. Issues on
 * first need, refreshes at {@code refreshAt} of the lifetime, overlaps old and new keys (the old
 * lease is revoked once every process that opened it has opened the new one or exited, or when
 * {@code grace} ends), backs off on issuer errors, serves until expiry and then fails closed,
 * revokes idle leases and, on shutdown, all of them.
 *
 * <p>The read path ({@link #current}) touches one volatile field when a valid key exists; every
 * state change happens under the slot's lock, off the FUSE workers.
 */
public final class LeaseManager implements KeySource, AutoCloseable {
    private static final System.Logger LOG = System.getLogger(LeaseManager.class.getName());
    static final Duration SWEEP = Duration.ofSeconds(1);

    private final Issuer issuer;
    private final Supplier<Policy> policy;
    private final Clock clock;
    private final Scheduler scheduler;
    private final RandomGenerator random;
    private final LeaseEvents events;
    private final Predicate<ProcessInfo> alive;
    private final Map<String, Slot> slots = new ConcurrentHashMap<>();
    private final Map<String, String> blocked = new ConcurrentHashMap<>();
    private volatile boolean closed;
    private volatile Scheduler.Task sweepTask;

    private record Opener(int pid, long start) {
        static Opener of(ProcessInfo p) {
            return new Opener(p.pid(), p.startTime());
        }
    }

    /** The state of one (workload, key). Fields other than {@code current} change under {@code this}. */
    private final class Slot {
        final String workloadName;
        final String keyName;
        final boolean eager;
        volatile Workload workload;
        volatile Lease current;
        Lease previous;
        Scheduler.Task previousRevoke;
        Scheduler.Task refreshTask;
        Scheduler.Task expiryTask;
        Scheduler.Task retryTask;
        CompletableFuture<Lease> inflight;
        int failures;
        volatile String lastError;
        Instant lastRefresh;
        Instant idleSince;
        Map<Opener, ProcessInfo> openersCurrent = new ConcurrentHashMap<>();
        Map<Opener, ProcessInfo> openersPrevious = new ConcurrentHashMap<>();

        Slot(Workload w, String key, boolean eager) {
            this.workloadName = w.name();
            this.keyName = key;
            this.workload = w;
            this.eager = eager;
        }

        KeySpec spec() {
            return policy.get().keys().get(keyName);
        }
    }

    public LeaseManager(Issuer issuer, Supplier<Policy> policy, Clock clock, Scheduler scheduler, RandomGenerator random,
                        LeaseEvents events, Predicate<ProcessInfo> alive) {
        this.issuer = issuer;
        this.policy = policy;
        this.clock = clock;
        this.scheduler = scheduler;
        this.random = random;
        this.events = events;
        this.alive = alive;
        scheduleSweep();
    }

    private static String id(String workload, String key) {
        return workload + "\u0000" + key;
    }

    private Slot slot(Workload w, String key, boolean eager) {
        Slot s = slots.computeIfAbsent(id(w.name(), key), k -> new Slot(w, key, eager));
        s.workload = w;
        return s;
    }

    @Override
    public CompletionStage<IssuedKey> current(Workload workload, String key, ProcessInfo opener) {
        if (closed) {
            return CompletableFuture.failedFuture(new KeyUnavailableException("keywarden is shutting down"));
        }
        String block = blocked.get(workload.name());
        if (block != null) {
            return CompletableFuture.failedFuture(new KeyBlockedException("blocked by an operator: " + block));
        }
        Slot s = slot(workload, key, false);
        Lease l = s.current;
        if (l != null && clock.instant().isBefore(l.expiresAt())) {
            noteOpener(s, l, opener);
            return CompletableFuture.completedFuture(l.key());
        }
        CompletableFuture<Lease> f;
        synchronized (s) {
            l = s.current;
            if (l != null && clock.instant().isBefore(l.expiresAt())) {
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
        Slot s = slot(workload, key, true);
        synchronized (s) {
            Lease l = s.current;
            if (l != null && clock.instant().isBefore(l.expiresAt())) {
                return CompletableFuture.completedFuture(l);
            }
            return s.inflight != null ? s.inflight : startIssue(s, null);
        }
    }

    private void noteOpener(Slot s, Lease l, ProcessInfo p) {
        if (p == null) {
            return;
        }
        Opener o = Opener.of(p);
        s.idleSince = null;
        if (s.current == l) {
            s.openersCurrent.putIfAbsent(o, p);
            if (s.openersPrevious.remove(o) != null && s.openersPrevious.isEmpty()) {
                scheduler.execute(() -> revokePrevious(s, "every process that opened it has moved to the new key"));
            }
        }
    }

    private CompletableFuture<Lease> startIssue(Slot s, ProcessInfo opener) {
        CompletableFuture<Lease> f = new CompletableFuture<>();
        s.inflight = f;
        if (s.retryTask != null) {
            s.retryTask.cancel();
            s.retryTask = null;
        }
        scheduler.execute(() -> issue(s, f, opener));
        return f;
    }

    private void issue(Slot s, CompletableFuture<Lease> f, ProcessInfo opener) {
        KeySpec spec = s.spec();
        if (spec == null || !s.workload.grants(s.keyName)) {
            fail(s, f, "key " + s.keyName + " is no longer granted to " + s.workloadName, false);
            return;
        }
        try {
            Lease lease = issuer.issue(s.workload, spec, opener);
            issued(s, f, lease, spec);
        } catch (IssuerException e) {
            fail(s, f, e.getMessage(), e.retryable());
        } catch (RuntimeException e) {
            LOG.log(System.Logger.Level.ERROR, "issuer " + issuer.name() + " failed unexpectedly", e);
            fail(s, f, "issuer error: " + e.getClass().getSimpleName(), true);
        }
    }

    private void issued(Slot s, CompletableFuture<Lease> f, Lease lease, KeySpec spec) {
        Lease prev;
        Lease older = null;
        synchronized (s) {
            prev = s.current;
            Instant now = clock.instant();
            if (prev != null && now.isBefore(prev.expiresAt())) {
                older = s.previous;
                if (s.previousRevoke != null) {
                    s.previousRevoke.cancel();
                }
                s.previous = prev;
                s.openersPrevious = s.openersCurrent;
                s.openersCurrent = new ConcurrentHashMap<>();
                Instant graceEnd = now.plus(spec.grace());
                s.previousRevoke = scheduler.at(graceEnd.isBefore(prev.expiresAt()) ? graceEnd : prev.expiresAt(),
                        () -> revokePrevious(s, "grace ended"));
            } else if (prev != null) {
                older = prev;
                s.openersCurrent = new ConcurrentHashMap<>();
            }
            s.current = lease;
            s.failures = 0;
            s.lastError = null;
            s.lastRefresh = now;
            s.inflight = null;
            cancel(s.refreshTask);
            cancel(s.expiryTask);
            s.refreshTask = scheduler.at(Timing.refreshTime(lease.issuedAt(), lease.expiresAt(), spec.refreshAt(), random),
                    () -> refresh(s, lease));
            s.expiryTask = scheduler.at(lease.expiresAt(), () -> expire(s, lease));
        }
        events.issued(s.workload, s.keyName, lease, prev);
        if (older != null) {
            revoke(s, older, "superseded");
        }
        if (prev != null && s.previous == prev && s.openersPrevious.isEmpty() && !s.eager) {
            revokePrevious(s, "no live process holds it");
        }
        f.complete(lease);
    }

    private void fail(Slot s, CompletableFuture<Lease> f, String reason, boolean retryable) {
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

    private void retry(Slot s) {
        synchronized (s) {
            s.retryTask = null;
            if (closed || s.inflight != null || !slots.containsKey(id(s.workloadName, s.keyName))) {
                return;
            }
            Lease l = s.current;
            boolean needed = s.eager || l != null || !s.openersCurrent.isEmpty();
            if (!needed) {
                return;
            }
            startIssue(s, null);
        }
    }

    private void refresh(Slot s, Lease due) {
        synchronized (s) {
            if (closed || s.current != due || s.inflight != null) {
                return;
            }
            startIssue(s, null);
        }
    }

    private void expire(Slot s, Lease lease) {
        synchronized (s) {
            if (s.current != lease) {
                return;
            }
            if (s.lastError == null) {
                s.lastError = "key expired at " + lease.expiresAt() + " and was not refreshed";
            } else {
                s.lastError = "key expired at " + lease.expiresAt() + "; refresh failed: " + s.lastError;
            }
        }
        events.expired(s.workload, s.keyName, lease);
    }

    private void revokePrevious(Slot s, String reason) {
        Lease p;
        synchronized (s) {
            p = s.previous;
            if (p == null) {
                return;
            }
            s.previous = null;
            cancel(s.previousRevoke);
            s.previousRevoke = null;
            s.openersPrevious = new ConcurrentHashMap<>();
        }
        revoke(s, p, reason);
    }

    private void revoke(Slot s, Lease lease, String reason) {
        try {
            issuer.revoke(lease);
            events.revoked(s.workload, s.keyName, lease, reason);
        } catch (IssuerException e) {
            LOG.log(System.Logger.Level.WARNING, "revoking " + lease.leaseId() + " failed: " + e.getMessage());
        } finally {
            // Dropped from its slot: nothing serves it again, so its bytes are wiped now.
            lease.key().destroy();
        }
    }

    /** Refuses keys to {@code workload} until {@link #unblock}; its leases should be revoked too. */
    public void block(String workload, String reason) {
        blocked.put(workload, reason);
    }

    public boolean unblock(String workload) {
        return blocked.remove(workload) != null;
    }

    public Map<String, String> blocked() {
        return Map.copyOf(blocked);
    }

    /** Revokes a workload's leases now (kill switch, policy change, idle); the next open issues anew. */
    public int revokeNow(String workload, String key, String reason) {
        List<Slot> hit = new ArrayList<>();
        for (Slot s : slots.values()) {
            if (s.workloadName.equals(workload) && (key == null || s.keyName.equals(key))) {
                hit.add(s);
            }
        }
        int n = 0;
        for (Slot s : hit) {
            n += drop(s, reason);
        }
        return n;
    }

    private int drop(Slot s, String reason) {
        List<Lease> leases = new ArrayList<>();
        synchronized (s) {
            slots.remove(id(s.workloadName, s.keyName), s);
            if (s.current != null) {
                leases.add(s.current);
            }
            if (s.previous != null) {
                leases.add(s.previous);
            }
            s.current = null;
            s.previous = null;
            cancel(s.refreshTask);
            cancel(s.expiryTask);
            cancel(s.retryTask);
            cancel(s.previousRevoke);
        }
        leases.forEach(l -> revoke(s, l, reason));
        return leases.size();
    }

    private static void cancel(Scheduler.Task t) {
        if (t != null) {
            t.cancel();
        }
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
        for (Slot s : slots.values()) {
            if (p.workload(s.workloadName).map(w -> !w.grants(s.keyName)).orElse(true)) {
                drop(s, "removed from the policy");
                continue;
            }
            if (s.eager) {
                continue;
            }
            s.openersPrevious.values().removeIf(alive.negate());
            s.openersCurrent.values().removeIf(alive.negate());
            if (s.previous != null && s.openersPrevious.isEmpty()) {
                revokePrevious(s, "every process that opened it has moved to the new key or exited");
            }
            if (s.current != null && s.openersCurrent.isEmpty()) {
                if (s.idleSince == null) {
                    s.idleSince = now;
                } else if (!now.isBefore(s.idleSince.plus(p.idleRevoke()))) {
                    drop(s, "idle: no process of the workload alive for " + p.idleRevoke().toSeconds() + "s");
                }
            }
        }
    }

    @Override
    public String status(Workload workload, String key) {
        Slot s = slots.get(id(workload.name(), key));
        if (s == null) {
            String block = blocked.get(workload.name());
            return block == null ? "ok" : "error: blocked by an operator: " + block;
        }
        Lease l = s.current;
        if (l != null && clock.instant().isBefore(l.expiresAt())) {
            return "ok";
        }
        String e = s.lastError;
        String block = blocked.get(workload.name());
        if (block != null) {
            return "error: blocked by an operator: " + block;
        }
        return e == null ? "ok" : "error: " + e;
    }

    /** A view of every lease for {@code status}: never secrets. */
    public List<LeaseView> view() {
        List<LeaseView> out = new ArrayList<>();
        for (Slot s : slots.values()) {
            Lease l = s.current;
            out.add(new LeaseView(s.workloadName, s.keyName, l == null ? null : l.leaseId(),
                    l == null ? null : l.key().fingerprint(), l == null ? null : l.providerKeyId().orElse(null),
                    l == null ? null : l.expiresAt(), s.lastRefresh, s.lastError, s.openersCurrent.size()));
        }
        return out;
    }

    public record LeaseView(String workload, String key, String leaseId, String fingerprint, String providerKeyId,
                            Instant expiresAt, Instant lastRefresh, String lastError, int openers) {
    }

    /** Stops all timers; revokes every lease when {@code revokeAll}. */
    public void shutdown(boolean revokeAll) {
        closed = true;
        cancel(sweepTask);
        for (Slot s : List.copyOf(slots.values())) {
            if (revokeAll) {
                drop(s, "shutdown");
            } else {
                synchronized (s) {
                    cancel(s.refreshTask);
                    cancel(s.expiryTask);
                    cancel(s.retryTask);
                    cancel(s.previousRevoke);
                }
            }
        }
    }

    @Override
    public void close() {
        shutdown(true);
    }
}
