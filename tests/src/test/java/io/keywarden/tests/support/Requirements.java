package io.keywarden.tests.support;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Skips tests, with the reason, where the machine lacks what they need. */
public final class Requirements {
    private Requirements() {
    }

    public static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    public static void rootAndFuse() {
        assumeTrue(isRoot(), "needs root: mounting FUSE requires CAP_SYS_ADMIN");
        assumeTrue(Files.exists(Path.of("/dev/fuse")), "needs /dev/fuse (the FUSE kernel module)");
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/setpriv")), "needs setpriv (util-linux) to run readers as other uids");
    }

    public static void root() {
        assumeTrue(isRoot(), "needs root");
    }
}
