package io.keywarden.testkit;

import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.yaml.ProblemsException;

/** Policies written inline in a test: a policy that does not load fails the test, naming its problems. */
public final class Policies {
    private Policies() {
    }

    public static Policy of(String yaml) {
        try {
            return PolicyLoader.parse(yaml, "test-policy.yaml");
        } catch (ProblemsException e) {
            throw new AssertionError("the test's policy does not load: " + e.getMessage(), e);
        }
    }
}
