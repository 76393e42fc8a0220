package io.keywarden.delivery;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.WorkloadAttestor;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

/**
 * The one access core every front end asks (KeyFS, tmpfs, next the gateway and CSI): attest the
 * caller, apply the policy and the workload's {@code readers}, obtain the key from the lease core,
 * and record the outcome (ledger and metrics, through the {@link AccessListener}) before the front
 * end answers. Front ends only translate a {@link Decision} into their own answer.
 *
 * <p>Threads: {@link #authorize} runs on the caller's thread (a FUSE worker) when attestation can
 * answer from /proc and caches; when it must ask SPIRE it moves to {@code attestExecutor}. Waiting
 * for a key never blocks the caller's thread: the answer comes on the lease core's thread that
 * completed issuance, or on {@code timer} when the open timeout passes first.
 */
public final class AccessDecider {
    private final Supplier<Policy> policy;
    private final WorkloadAttestor attestor;
    private final KeySource keys;
    private final AccessListener listener;
    private final Clock clock;
    private final Duration issueTimeout;
    private final Executor attestExecutor;
    private final ScheduledExecutorService timer;

    public AccessDecider(Supplier<Policy> policy, WorkloadAttestor attestor, KeySource keys, AccessListener listener,
                         Clock clock, Duration issueTimeout, Executor attestExecutor, ScheduledExecutorService timer) {
        this.policy = policy;
        this.attestor = attestor;
        this.keys = keys;
        this.listener = listener;
        this.clock = clock;
        this.issueTimeout = issueTimeout;
        this.attestExecutor = attestExecutor;
        this.timer = timer;
    }

    public Duration issueTimeout() {
        return issueTimeout;
    }

    /** Whether {@code key} is defined at all (names are the same for every caller). */
    public boolean exists(String key) {
        return key != null && policy.get().keys().containsKey(key);
    }

    /** How many keys the policy defines. */
    public int keyCount() {
        return policy.get().keys().size();
    }

    /** Who the caller is, when attestation need not wait; null when it must ({@link #attest}). */
    public Attestation attestNow(int tid, int uid, int gid) {
        return attestor.attestWithoutWaiting(tid, uid, gid).orElse(null);
    }

    /** Who the caller is: inline when attestation need not wait, else on the attestation executor. */
    public CompletionStage<Attestation> attest(Caller c) {
        Optional<Attestation> now = attestor.attestWithoutWaiting(c.tid(), c.uid(), c.gid());
        if (now.isPresent()) {
            return CompletableFuture.completedFuture(now.get());
        }
        return CompletableFuture.supplyAsync(() -> attestor.attest(c.tid(), c.uid(), c.gid()), attestExecutor);
    }

    /**
     * May {@code who} see {@code key} at all (policy and readers)? A denial is recorded; a
     * permission is not (the front end records the grant with what it serves, {@link #grant}).
     */
    public Decision authorize(Attestation a, String key, String file) {
        if (!exists(key)) {
            return new Decision.NoSuchKey(key);
        }
        if (!(a instanceof Attestation.Identified who)) {
            return deny(a, Decision.DenyReason.UNIDENTIFIED, ((Attestation.Unidentified) a).reason(), key, file);
        }
        if (!who.workload().grants(key)) {
            return deny(a, Decision.DenyReason.NOT_GRANTED, "workload " + who.workload().name() + " is not granted key "
                    + key, key, file);
        }
        Optional<String> refusal = who.workload().readers().refusal(who.process());
        if (refusal.isPresent()) {
            return deny(a, Decision.DenyReason.READERS, refusal.get(), key, file);
        }
        return new Decision.Granted(who, null);
    }

    /** {@link #attest} then {@link #authorize}. */
    public CompletionStage<Decision> authorize(Caller c, String key, String file) {
        if (!exists(key)) {
            return CompletableFuture.completedFuture(new Decision.NoSuchKey(key));
        }
        return attest(c).thenApply(a -> authorize(a, key, file));
    }

    /**
     * A caller with no local process: a remote peer whose X.509-SVID (verified by the TLS layer)
     * names {@code spiffeId}. The policy decides by SPIFFE ID alone; a workload with {@code readers}
     * conditions is refused remotely, since none of them can be checked without a local process.
     * A denial is recorded; a permission is not (the grant is, when the key is obtained).
     */
    public Decision authorizeRemote(io.keywarden.policy.SpiffeId spiffeId, String key, String file) {
        if (!exists(key)) {
            return new Decision.NoSuchKey(key);
        }
        Optional<Workload> w = policy.get().workloadBySpiffeId(spiffeId);
        if (w.isEmpty()) {
            return deny(new Attestation.Unidentified(null, "no workload of the policy has SPIFFE ID " + spiffeId), Decision
                    .DenyReason.UNIDENTIFIED, "no workload of the policy has SPIFFE ID " + spiffeId, key, file);
        }
        Attestation.Identified who = new Attestation.Identified(null, w.get(), spiffeId);
        if (!w.get().grants(key)) {
            return deny(who, Decision.DenyReason.NOT_GRANTED, "workload " + w.get().name() + " is not granted key " + key,
                    key, file);
        }
        if (!w.get().readers().equals(io.keywarden.policy.Readers.ANY)) {
            return deny(who, Decision.DenyReason.READERS, "workload " + w.get().name() + " has readers conditions, which a"
                    + " remote caller cannot meet", key, file);
        }
        return new Decision.Granted(who, null);
    }

    /** Whether {@code who} passes policy and readers for {@code key}, recording nothing (names, listings). */
    public boolean permits(Attestation a, String key) {
        return a instanceof Attestation.Identified who && who.workload().grants(key)
                && who.workload().readers().refusal(who.process()).isEmpty();
    }

    /** The keys {@code a} may see, in policy order (a directory listing): nothing recorded. */
    public List<String> visibleKeys(Attestation a) {
        List<String> out = new ArrayList<>();
        for (KeySpec k : policy.get().keys().values()) {
            if (permits(a, k.name())) {
                out.add(k.name());
            }
        }
        return out;
    }

    /**
     * The current key for an authorised caller, issued first when there is none; the grant (or why
     * not) is recorded before the stage completes.
     */
    public CompletionStage<Decision> obtain(Attestation.Identified who, String key, String file) {
        CompletableFuture<IssuedKey> f = issuance(who, key);
        return f.isDone() ? CompletableFuture.completedFuture(decide(who, key, file, f)) : decideWhenIssued(who, key, file, f);
    }

    /**
     * The key's issuance for {@code who} as it stands: done when there is a current key (or a reason
     * why not), else the issue under way. {@link #obtain} in two steps, for a caller that answers
     * at once when it is done ({@link #decide}) without a stage or a callback.
     */
    public CompletableFuture<IssuedKey> issuance(Attestation.Identified who, String key) {
        try {
            return keys.current(who.workload(), key, who.process()).toCompletableFuture();
        } catch (KeyUnavailableException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /** The decision on an issuance that is done ({@link #issuance}), recorded. */
    public Decision decide(Attestation.Identified who, String key, String file, CompletableFuture<IssuedKey> done) {
        return settle(who, key, file, done, false);
    }

    /** The decision once {@code f} completes, or the issue timeout passes (whichever first), recorded. */
    public CompletionStage<Decision> decideWhenIssued(Attestation.Identified who, String key, String file,
                                                      CompletableFuture<IssuedKey> f) {
        CompletableFuture<Decision> out = new CompletableFuture<>();
        // Exactly one of "issued" and "timed out" settles (and records) the decision.
        java.util.concurrent.atomic.AtomicBoolean claimed = new java.util.concurrent.atomic.AtomicBoolean();
        var timeout = timer.schedule(() -> {
            if (claimed.compareAndSet(false, true)) {
                out.complete(settleFailure(who, key, file, new TimeoutException()));
            }
        }, issueTimeout.toMillis(), TimeUnit.MILLISECONDS);
        f.whenComplete((k, e) -> {
            timeout.cancel(false);
            if (claimed.compareAndSet(false, true)) {
                out.complete(settle(who, key, file, f, true));
            }
        });
        return out;
    }

    private Decision settle(Attestation.Identified who, String key, String file, CompletableFuture<IssuedKey> f,
                            boolean waited) {
        IssuedKey issued;
        try {
            issued = f.join();
        } catch (CompletionException | java.util.concurrent.CancellationException e) {
            return settleFailure(who, key, file, e.getCause() != null ? e.getCause() : e);
        }
        if (issued.isExpiredAt(clock.millis())) {
            return unavailable(who, Decision.UnavailableReason.EXPIRED, "key expired at " + issued.expiresAt(), key, file);
        }
        // Attestation checked the start time just now; after a wait for issuance, check it again.
        if (waited && who.process() != null && !attestor.isAlive(who.process())) {
            return deny(who, Decision.DenyReason.PROCESS_GONE, "process exited or its pid was reused", key, file);
        }
        return grant(who, key, file, issued);
    }

    private Decision settleFailure(Attestation.Identified who, String key, String file, Throwable cause) {
        if (cause instanceof KeyBlockedException) {
            return deny(who, Decision.DenyReason.BLOCKED, cause.getMessage(), key, file);
        }
        if (cause instanceof TimeoutException) {
            return unavailable(who, Decision.UnavailableReason.ISSUER_TIMEOUT, "issuer did not answer within "
                    + issueTimeout.toSeconds() + "s", key, file);
        }
        if (cause instanceof KeyUnavailableException) {
            return unavailable(who, Decision.UnavailableReason.ISSUER_FAILED, cause.getMessage(), key, file);
        }
        return unavailable(who, Decision.UnavailableReason.ISSUER_FAILED, "issuer failed: "
                + cause.getClass().getSimpleName(), key, file);
    }

    /** Records a grant ({@code issued} null for files without the key); not recorded means not given. */
    public Decision grant(Attestation.Identified who, String key, String file, IssuedKey issued) {
        try {
            listener.granted(who, key, file, issued);
            return new Decision.Granted(who, issued);
        } catch (RuntimeException e) {
            return new Decision.Unavailable(who, Decision.UnavailableReason.NOT_RECORDED, "access to " + key + "/" + file
                    + " could not be recorded: " + e.getMessage());
        }
    }

    /** The {@code status} of {@code key} for an authorised caller. */
    public LeaseStatus status(Workload w, String key) {
        return keys.status(w, key);
    }

    private Decision deny(Attestation a, Decision.DenyReason code, String reason, String key, String file) {
        try {
            listener.denied(a, key, file, code, reason);
        } catch (RuntimeException e) {
            // A denial that cannot be recorded is still a denial.
        }
        return new Decision.Denied(a, code, reason);
    }

    private Decision unavailable(Attestation.Identified who, Decision.UnavailableReason code, String reason, String key,
                                 String file) {
        try {
            listener.denied(who, key, file, code, reason);
        } catch (RuntimeException e) {
            // Nothing is served either way.
        }
        return new Decision.Unavailable(who, code, reason);
    }
}
