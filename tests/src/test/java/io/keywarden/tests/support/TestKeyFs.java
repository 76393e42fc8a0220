package io.keywarden.tests.support;

import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.SelectorAttestor;
import io.keywarden.delivery.AccessListener;
import io.keywarden.delivery.KeyFs;
import io.keywarden.delivery.KeySource;
import io.keywarden.policy.Policy;
import java.time.Clock;
import java.time.Duration;

/** KeyFS as the tests mount it: the dev provider's selector attestation over the real /proc. */
public final class TestKeyFs {
    private TestKeyFs() {
    }

    public static KeyFs of(Policy policy, KeySource keys, AccessListener listener, Clock clock, Duration issueTimeout) {
        return new KeyFs(() -> policy, new SelectorAttestor(ProcAttestor.system(), () -> policy), keys, listener, clock,
                issueTimeout);
    }
}
