package io.keywarden.daemon.guard;

import java.time.Instant;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What the gateway already counted per lease and minute, so that the usage-API sensor, which sees
 * every use of a provider key (the gateway's requests included), adds only the rest: a workload that
 * uses its key both through the gateway and from the file is counted once. Minutes older than the
 * sensor's look-back are dropped.
 */
public final class GatewayTally {
    private record Slot(String leaseId, long minute) {
        @Override
        public boolean equals(Object o) {
            // Written out: a record's own equals and hashCode go through method handles, which the
            // daemon's C1-only JIT does not inline (3% of the gateway's event loop by perf, as map keys).
            return o instanceof Slot s && minute == s.minute && java.util.Objects.equals(leaseId, s.leaseId);
        }

        @Override
        public int hashCode() {
            return 31 * java.util.Objects.hashCode(leaseId) + Long.hashCode(minute);
        }
    }

    private final Map<Slot, long[]> counts = new ConcurrentHashMap<>();

    public void add(String leaseId, Instant at, long in, long out, long requests) {
        if (leaseId == null) {
            return;
        }
        long[] c = counts.computeIfAbsent(new Slot(leaseId, at.getEpochSecond() / 60), k -> new long[3]);
        synchronized (c) {
            c[0] += in;
            c[1] += out;
            c[2] += requests;
        }
    }

    /** {in, out, requests} the gateway counted for {@code leaseId} in the minute starting at {@code minute}. */
    long[] get(String leaseId, Instant minute) {
        long[] c = counts.get(new Slot(leaseId, minute.getEpochSecond() / 60));
        if (c == null) {
            return new long[3];
        }
        synchronized (c) {
            return c.clone();
        }
    }

    void dropBefore(Instant t) {
        long m = t.getEpochSecond() / 60;
        counts.keySet().removeIf(s -> s.minute() < m);
    }
}
