package io.keywarden.daemon.guard;

import io.keywarden.policy.Workload;

/**
 * Token budgets that hold under concurrency: each request reserves its worst case before it is
 * forwarded and settles to what it used after, so the tokens admitted in a window never exceed the
 * budget however many requests are in flight. {@link GuardEngine} implements it for one node; a
 * fleet-wide implementation keeps the same contract across nodes.
 */
public interface TokenBudgets {
    /**
     * Admits {@code w}'s request for {@code model} whose worst case is {@code worstCase} tokens, and
     * reserves them; or says why not (model not allowed, a budget that cannot cover the worst case
     * beside what is used and reserved already).
     */
    java.util.concurrent.CompletionStage<Admission> reserve(Workload w, String model, long worstCase);

    /**
     * Replaces {@code r} by the usage of its request (exactly once; later calls do nothing). The
     * caller charges the reservation itself, or an estimate, when usage could not be metered: never 0
     * for a request the upstream may have billed.
     */
    void settle(Workload w, Reservation r, String model, long tokensIn, long tokensOut, String sensor);
}
