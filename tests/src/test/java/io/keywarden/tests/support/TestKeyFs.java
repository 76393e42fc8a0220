package io.keywarden.tests.support;

import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.SelectorAttestor;
import io.keywarden.delivery.AccessDecider;
import io.keywarden.delivery.AccessListener;
import io.keywarden.delivery.KeyFs;
import io.keywarden.delivery.KeySource;
import io.keywarden.policy.Policy;
import java.time.Clock;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;

/** KeyFS as the tests mount it: the dev provider's selector attestation over the real /proc. */
public final class TestKeyFs {
    /** Shared by every test KeyFS: attestation that must wait, and open timeouts. Daemon threads. */
    private static final ScheduledExecutorService TIMER = Executors.newScheduledThreadPool(2, r -> {
        Thread t = new Thread(r, "test-keyfs-timer");
        t.setDaemon(true);
        return t;
    });

    private TestKeyFs() {
    }

    public static KeyFs of(Policy policy, KeySource keys, AccessListener listener, Clock clock, Duration issueTimeout) {
        return new KeyFs(decider(policy, keys, listener, clock, issueTimeout), clock);
    }

    /** With this attestor's /proc reading (a benchmark compares thread descriptors with start times). */
    public static KeyFs of(Policy policy, KeySource keys, AccessListener listener, Clock clock, Duration issueTimeout,
                           ProcAttestor proc) {
        return new KeyFs(new AccessDecider(() -> policy, new SelectorAttestor(proc, () -> policy), keys, listener,
                clock, issueTimeout, TIMER, TIMER), clock);
    }

    public static AccessDecider decider(Policy policy, KeySource keys, AccessListener listener, Clock clock,
                                        Duration issueTimeout) {
        return new AccessDecider(() -> policy, new SelectorAttestor(ProcAttestor.system(), () -> policy), keys, listener,
                clock, issueTimeout, TIMER, TIMER);
    }
}
