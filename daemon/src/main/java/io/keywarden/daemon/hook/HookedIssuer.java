package io.keywarden.daemon.hook;

import io.keywarden.attestation.ProcessInfo;
import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.Lease;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Workload;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * An issuer that asks the policy hook before each issuance ({@code action: "issue"}; the process
 * is the one whose open triggered it, none for eager tmpfs issuance). A denial is a refusal, not
 * retried sooner than the lease core's back-off; nothing is issued. Runs on the issuer pool, so
 * waiting for OPA (bounded by the hook's timeout) never blocks a FUSE worker or an event loop.
 */
public final class HookedIssuer extends io.keywarden.issuer.ForwardingIssuer {
    private final PolicyHook hook;
    private final long waitMs;

    public HookedIssuer(Issuer issuer, PolicyHook hook, java.time.Duration timeout) {
        super(issuer);
        this.hook = hook;
        this.waitMs = timeout.toMillis() + 500;
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        PolicyHook.Verdict v;
        try {
            v = hook.decide(workload, key.name(), null, opener, "issue").toCompletableFuture().get(waitMs,
                    TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IssuerException("interrupted while asking the policy hook", IssuerException.Kind.UNREACHABLE);
        } catch (ExecutionException | TimeoutException e) {
            throw new IssuerException("the policy hook did not answer", IssuerException.Kind.UNREACHABLE);
        }
        if (!v.allowed()) {
            throw new IssuerException(v.reason(), IssuerException.Kind.REFUSED, false, 403);
        }
        return delegate.issue(workload, key, opener);
    }
}
