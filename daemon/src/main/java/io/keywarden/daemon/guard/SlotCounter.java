package io.keywarden.daemon.guard;

import io.keywarden.policy.Workload;
import java.util.concurrent.CompletionStage;

/**
 * Where a late sensor's usage is counted once for a fleet: per slot (one bucket of one provider
 * key, e.g. {@code 1764806400/key_abc}) the sensor gives the slot's totals so far, and what grew
 * since any node last gave them is counted. The answer is what was counted now: the sensor
 * records that on this node (ledger, metrics).
 */
public interface SlotCounter {
    /** Counts what grew in {@code slot}; answers {in, out, requests} counted now. */
    CompletionStage<long[]> count(Workload w, String slot, long in, long out, long requests, String sensor);
}
