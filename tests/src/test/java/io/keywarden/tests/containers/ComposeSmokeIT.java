package io.keywarden.tests.containers;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The Compose stack as a user runs it: deploy/docker/build-images.sh (local images when no registry
 * answers; nothing rebuilt whose inputs did not change), then deploy/compose/smoke.sh, which brings
 * the stack up, checks that the example agent read its key and used it, that a process the policy
 * does not name is refused, the metrics and the ledger, and takes it down with `down -v`, checking
 * that no container, volume, network or mount is left. Skipped, with the reason, where there is no
 * Docker engine or no Compose.
 */
class ComposeSmokeIT {
    static final Path REPO = Path.of(System.getProperty("keywarden.repo", "..")).toAbsolutePath().normalize();

    @Test
    void theStackComesUpServesTheExampleAgentItsKeyAndGoesDownWithoutATrace() {
        Requirements.rootAndFuse();
        assumeTrue(Proc.run("docker", "info").ok(), "needs a Docker engine (docker info failed)");
        assumeTrue(Proc.run("sh", "-c", "docker compose version || docker-compose version").ok(),
                "needs Docker Compose (v2 'docker compose' or Debian's docker-compose)");
        long t0 = System.nanoTime();
        Proc.Result images = Proc.withEnv(java.time.Duration.ofMinutes(20), Map.of(), "bash", REPO.resolve("deploy/docker/build-images.sh").toString());
        assertEquals(0, images.code(), "build-images.sh: " + images.out() + images.err());
        long t1 = System.nanoTime();
        Proc.Result smoke = Proc.withEnv(java.time.Duration.ofMinutes(6), Map.of("KEYWARDEN_COMPOSE_SMOKE_UP", "1"), "sh", "-c",
                "cd '" + REPO + "' && sh deploy/compose/smoke.sh 180");
        long t2 = System.nanoTime();
        assertEquals(0, smoke.code(), "smoke.sh: " + smoke.out() + smoke.err());
        assertTrue(smoke.out().contains("smoke: all good"), smoke.out());
        assertTrue(smoke.out().contains("down -v left nothing behind"), smoke.out());
        System.out.printf("Compose smoke: images checked or built in %d s; up, checked and down in %d s%n%s",
                (t1 - t0) / 1_000_000_000, (t2 - t1) / 1_000_000_000, smoke.out());
    }
}
