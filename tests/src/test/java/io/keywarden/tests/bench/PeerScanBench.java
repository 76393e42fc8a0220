package io.keywarden.tests.bench;

import io.keywarden.linux.FdScan;
import io.keywarden.linux.ProcFiles;
import io.keywarden.tests.support.Requirements;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The gateway's per-request proof that one process alone holds a connection: one pass over every
 * process's descriptors. Side by side in one run: the pass as it was written (File.list of each
 * /proc/PID/fd, readlink of each built path, as Java strings) and {@link FdScan} (getdents64 and
 * readlinkat in native buffers), finding this JVM's own socket. Prints figures; asserts only that
 * both find the same holders. Run: {@code ./mvnw -B -Pbench -pl tests verify -Dit.test=PeerScanBench}
 */
class PeerScanBench {
    static final int RUNS = Integer.getInteger("bench.scans", 2000);

    @Test
    void nativePassAgainstTheJavaOne() throws Exception {
        Requirements.root();
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
             Socket client = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            String target = ownSocketLink();
            int processes = 0;
            int descriptors = 0;
            try (var pids = Files.list(Path.of("/proc"))) {
                for (Path p : (Iterable<Path>) pids::iterator) {
                    String[] fds = p.getFileName().toString().matches("\\d+") ? p.resolve("fd").toFile().list() : null;
                    if (fds != null) {
                        processes++;
                        descriptors += fds.length;
                    }
                }
            }
            int[] javaFound = javaPass(target);
            long[] inode = {Long.parseLong(target.substring(8, target.length() - 1))};
            int[] nativeFound = FdScan.socketHolders("/proc", inode)[0];
            Arrays.sort(nativeFound);
            if (!Arrays.equals(javaFound, nativeFound)) {
                throw new AssertionError("the passes disagree: " + Arrays.toString(javaFound) + " vs "
                        + Arrays.toString(nativeFound));
            }
            long[] j = new long[RUNS];
            long[] n = new long[RUNS];
            for (int warm = 0; warm < 200; warm++) {
                javaPass(target);
                FdScan.socketHolders("/proc", inode);
            }
            for (int i = 0; i < RUNS; i++) {   // interleaved: the same machine state for both
                long t0 = System.nanoTime();
                javaPass(target);
                long t1 = System.nanoTime();
                FdScan.socketHolders("/proc", inode);
                long t2 = System.nanoTime();
                j[i] = t1 - t0;
                n[i] = t2 - t1;
            }
            Arrays.sort(j);
            Arrays.sort(n);
            System.out.printf("== holder scan: %d processes, %d descriptors, %d passes each, interleaved ==%n", processes,
                    descriptors, RUNS);
            System.out.printf("Java strings (before): median %7.1f µs  p99 %7.1f µs%n", j[RUNS / 2] / 1e3, j[RUNS * 99 / 100] / 1e3);
            System.out.printf("FdScan (native):       median %7.1f µs  p99 %7.1f µs  (%.1fx)%n", n[RUNS / 2] / 1e3,
                    n[RUNS * 99 / 100] / 1e3, (double) j[RUNS / 2] / n[RUNS / 2]);
        }
    }

    /** The socket link of one of this JVM's descriptors (a socket it alone holds). */
    private static String ownSocketLink() {
        String[] fds = new java.io.File("/proc/self/fd").list();
        String last = null;
        for (String fd : fds) {
            Optional<String> l = ProcFiles.readlink("/proc/self/fd/" + fd);
            if (l.isPresent() && l.get().startsWith("socket:[")) {
                last = l.get();
            }
        }
        return last;
    }

    /** The pass as written before FdScan. */
    private static int[] javaPass(String target) {
        String[] pids = new java.io.File("/proc").list();
        int[] out = new int[0];
        for (String name : pids) {
            if (!name.matches("\\d+")) {
                continue;
            }
            String fdDir = "/proc/" + name + "/fd";
            String[] fds = new java.io.File(fdDir).list();
            if (fds == null) {
                continue;
            }
            for (String fd : fds) {
                Optional<String> link = ProcFiles.readlink(fdDir + "/" + fd);
                if (link.isPresent() && link.get().equals(target)) {
                    out = Arrays.copyOf(out, out.length + 1);
                    out[out.length - 1] = Integer.parseInt(name);
                    break;
                }
            }
        }
        Arrays.sort(out);
        return out;
    }
}
