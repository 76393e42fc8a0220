package io.keywarden.tests.support;

/** Policies the integration tests share: one key, workloads recognised by uid. */
public final class TestPolicies {
    /** alice = uid 1001, key openai. */
    public static final String ALICE = """
            keys:
              openai: {}
            workloads:
              - name: alice
                spiffeId: spiffe://test.local/alice
                selectors: [unix:uid:1001]
                keys: [openai]
            """;

    /** alice = uid 1001 and bob = uid 1002, both with key openai. */
    public static final String ALICE_AND_BOB = ALICE + """
              - name: bob
                spiffeId: spiffe://test.local/bob
                selectors: [unix:uid:1002]
                keys: [openai]
            """;

    /** The length of the fixed-shape keys tests swap under readers. */
    public static final int KEY_LENGTH = 51;

    private TestPolicies() {
    }
}
