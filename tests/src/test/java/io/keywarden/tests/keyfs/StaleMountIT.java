package io.keywarden.tests.keyfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.fuse.FuseSession;
import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.MountMain;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** kill -9 of the server leaves a dead mount; the next start detaches it and serves again. */
class StaleMountIT {

    static String classPath() {
        String cp = System.getProperty("surefire.test.class.path");
        return cp != null && !cp.isBlank() ? cp : System.getProperty("java.class.path");
    }

    @Test
    void restartAfterKill9DetachesTheDeadMountAndServes() throws Exception {
        Requirements.rootAndFuse();
        Path mnt = Files.createTempDirectory("kw-stale-");
        Process child = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", classPath(), MountMain.class.getName(), mnt.toString(), "sk-first-server")
                .redirectErrorStream(true).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8));
            String line = out.readLine();
            assertTrue(line != null && line.startsWith("ready"), "child did not mount: " + line);
            assertEquals("sk-first-server", Proc.as(1001, "cat", mnt.resolve("openai/api_key").toString()).out());

            child.destroyForcibly();
            assertTrue(child.waitFor(10, TimeUnit.SECONDS));
            Proc.Result dead = Proc.as(1001, "cat", mnt.resolve("openai/api_key").toString());
            assertTrue(dead.err().contains("Transport endpoint is not connected"), dead.err());
            assertTrue(Mounts.at(mnt).isPresent(), "the dead mount is still there");

            try (FuseSession s = FuseSession.mount(mnt, MountMain.keyFs("sk-second-server"),
                    FuseSession.Options.defaults("keywarden"))) {
                assertEquals("sk-second-server", Proc.as(1001, "cat", mnt.resolve("openai/api_key").toString()).out());
                assertEquals(1, Mounts.list().stream().filter(m -> m.mountPoint().equals(mnt)).count(),
                        "the stale mount was detached, not stacked under the new one");
            }
            assertTrue(Mounts.at(mnt).isEmpty(), "close() unmounts");
        } finally {
            child.destroyForcibly();
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Files.deleteIfExists(mnt);
        }
    }
}
