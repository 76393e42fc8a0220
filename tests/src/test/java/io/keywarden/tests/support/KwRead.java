package io.keywarden.tests.support;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The C reader in resources/c/kwread.c, compiled once per JVM into a world-executable place. */
public final class KwRead {
    /**
     * {@code openStale}: opens refused ESTALE (a key that changed between the lookup and the open,
     * twice); {@code meanNs}: the mean open; {@code wallNs}: the whole run (all threads), so that
     * {@link #opensPerSecond} is what the file system served.
     */
    public record Stats(long reads, long bad, long errors, int firstErrno, long medianNs, long p99Ns, long openStale,
                        long meanNs, long wallNs) {
        /** Opens (good or not) per second over the whole run. */
        public double opensPerSecond() {
            return wallNs == 0 ? 0 : (reads + errors) * 1e9 / wallNs;
        }
    }

    private static final Pattern LINE = Pattern.compile("reads=(\\d+) bad=(\\d+) errors=(\\d+) first_errno=(\\d+)"
            + " median_ns=(\\d+) p99_ns=(\\d+) open_estale=(\\d+) mean_ns=(\\d+) wall_ns=(\\d+)");
    private static Path binary;

    private KwRead() {
    }

    public static synchronized Path binary() {
        if (binary != null) {
            return binary;
        }
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/cc")) || Files.isExecutable(Path.of("/usr/bin/gcc")),
                "needs a C compiler (cc) to build the reader program");
        try {
            Path dir = Files.createTempDirectory("kw-kwread-");
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
            Path src = dir.resolve("kwread.c");
            try (InputStream in = KwRead.class.getResourceAsStream("/c/kwread.c")) {
                Files.copy(in, src);
            }
            Path bin = dir.resolve("kwread");
            // Removed when the test JVM exits (deleteOnExit runs last-registered first: files, then the directory).
            for (Path p : new Path[] {dir, src, bin}) {
                p.toFile().deleteOnExit();
            }
            Proc.Result r = Proc.run("cc", "-O2", "-pthread", "-o", bin.toString(), src.toString());
            if (!r.ok()) {
                throw new AssertionError("cannot compile kwread: " + r.err());
            }
            binary = bin;
            return bin;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** Runs the reader as {@code uid} (or as root when uid is 0), optionally pinned with taskset CPU list. */
    public static Stats run(int uid, String cpus, Path file, int threads, int opens, String prefix, int length) {
        List<String> cmd = new ArrayList<>();
        if (cpus != null) {
            cmd.addAll(List.of("taskset", "-c", cpus));
        }
        cmd.addAll(List.of(binary().toString(), file.toString(), Integer.toString(threads), Integer.toString(opens), prefix,
                Integer.toString(length)));
        Proc.Result r = uid == 0 ? Proc.run(cmd.toArray(String[]::new)) : Proc.as(uid, cmd.toArray(String[]::new));
        Matcher m = LINE.matcher(r.out());
        if (r.code() != 0 || !m.find()) {
            throw new AssertionError("kwread failed (" + r.code() + "): " + r.err());
        }
        return new Stats(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)), Long.parseLong(m.group(3)),
                Integer.parseInt(m.group(4)), Long.parseLong(m.group(5)), Long.parseLong(m.group(6)),
                Long.parseLong(m.group(7)), Long.parseLong(m.group(8)), Long.parseLong(m.group(9)));
    }
}
