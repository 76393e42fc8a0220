package io.keywarden.tests.support;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashMap;
import java.util.Map;

/** Small C programs under resources/c, compiled once per JVM into a world-executable directory. */
public final class CProgram {
    private static final Map<String, Path> BUILT = new HashMap<>();

    private CProgram() {
    }

    public static synchronized Path binary(String name) {
        Path known = BUILT.get(name);
        if (known != null) {
            return known;
        }
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/cc")) || Files.isExecutable(Path.of("/usr/bin/gcc")),
                "needs a C compiler (cc) to build " + name);
        try {
            Path dir = Files.createTempDirectory("kw-c-" + name + "-");
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
            Path src = dir.resolve(name + ".c");
            try (InputStream in = CProgram.class.getResourceAsStream("/c/" + name + ".c")) {
                if (in == null) {
                    throw new AssertionError("no resource /c/" + name + ".c");
                }
                Files.copy(in, src);
            }
            Path bin = dir.resolve(name);
            // Removed when the test JVM exits (deleteOnExit runs last-registered first: files, then the directory).
            for (Path p : new Path[] {dir, src, bin}) {
                p.toFile().deleteOnExit();
            }
            Proc.Result r = Proc.run("cc", "-O2", "-pthread", "-o", bin.toString(), src.toString());
            if (!r.ok()) {
                throw new AssertionError("cannot compile " + name + ": " + r.err());
            }
            BUILT.put(name, bin);
            return bin;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }
}
