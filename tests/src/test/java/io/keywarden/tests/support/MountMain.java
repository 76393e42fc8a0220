package io.keywarden.tests.support;

import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.FuseSession;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.testkit.MemoryKeySource;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;

/** A KeyFS in its own JVM, for tests that must kill the server: {@code MountMain DIR SECRET}. */
public final class MountMain {
    public static final String POLICY = TestPolicies.ALICE;

    private MountMain() {
    }

    public static KeyFs keyFs(String secret) throws Exception {
        Policy policy = PolicyLoader.parse(POLICY, "policy.yaml");
        MemoryKeySource keys = new MemoryKeySource();
        keys.set("alice", "openai", TestKeys.issued(secret, Instant.now().plus(Duration.ofHours(1))));
        return TestKeyFs.of(policy, keys,
                new RecordingListener(), Clock.systemUTC(), Duration.ofSeconds(5));
    }

    public static void main(String[] args) throws Exception {
        FuseSession s = FuseSession.mount(Path.of(args[0]), keyFs(args[1]), FuseSession.Options.defaults("keywarden"));
        System.out.println("ready " + s.mountPoint());
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
