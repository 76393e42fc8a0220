package io.keywarden.tests.containers;

import static org.junit.jupiter.api.Assumptions.abort;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import org.testcontainers.containers.BindMode;
import org.testcontainers.containers.GenericContainer;
import org.testcontainers.containers.startupcheck.OneShotStartupCheckStrategy;

/**
 * The end-to-end suite needs a Docker engine on this very host: the SPIRE agent (pid: host) must see
 * this JVM's processes with the pids the kernel gives keywarden, and a host directory bind-mounted
 * into it must be the one keywarden reads its admin socket from. A throw-away busybox container with
 * pid: host checks both; where they do not hold (a remote engine, Docker Desktop's VM, CI inside a
 * container with its own PID namespace) the suite is skipped with that reason.
 */
final class HostDocker {
    static final String PROBE_IMAGE = Images.get("PROBE_IMAGE", "busybox:1.37");

    private HostDocker() {
    }

    static void requireSameHost(Path scratch) throws Exception {
        Path probe = Files.createDirectory(scratch.resolve("probe"));
        Files.setPosixFilePermissions(probe, PosixFilePermissions.fromString("rwxrwxrwx"));
        long pid = ProcessHandle.current().pid();
        try (GenericContainer<?> box = new GenericContainer<>(PROBE_IMAGE)
                .withCreateContainerCmdModifier(c -> c.getHostConfig().withPidMode("host"))
                .withFileSystemBind(probe.toString(), "/probe", BindMode.READ_WRITE)
                .withCommand("sh", "-c", "cat /proc/" + pid + "/stat > /probe/stat || echo missing > /probe/stat")
                .withStartupCheckStrategy(new OneShotStartupCheckStrategy().withTimeout(Duration.ofSeconds(60)))) {
            box.start();
        } catch (RuntimeException e) {
            // e.g. rootless or user-namespaced engines refuse pid: host
            abort("the Docker engine cannot run a pid: host container here (" + e.getClass().getSimpleName() + ": "
                    + e.getMessage() + ")");
        }
        Path seen = probe.resolve("stat");
        if (!Files.exists(seen)) {
            abort("the Docker engine does not share this host's file system (a bind-mounted directory stayed empty)");
        }
        String theirs = Files.readString(seen, StandardCharsets.US_ASCII).trim();
        String ours = Files.readString(Path.of("/proc/self/stat"), StandardCharsets.US_ASCII).trim();
        if (!identity(ours).equals(identity(theirs))) {
            abort("the Docker engine's host PID namespace is not this JVM's: pid " + pid + " is another process there");
        }
    }

    /** pid, command and start time (field 22) of a /proc/PID/stat line: what identifies a process. */
    static String identity(String stat) {
        int close = stat.lastIndexOf(')');
        if (close < 0) {
            return "none";
        }
        String[] rest = stat.substring(close + 2).split(" ");
        return stat.substring(0, close + 1) + " " + (rest.length > 19 ? rest[19] : "?");
    }
}
