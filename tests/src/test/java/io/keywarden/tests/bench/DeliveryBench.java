package io.keywarden.tests.bench;

import io.keywarden.delivery.KeyFs;
import io.keywarden.delivery.TmpfsDelivery;
import io.keywarden.fuse.FuseSession;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.tests.support.TestKeyFs;
import io.keywarden.tests.support.KwRead;
import io.keywarden.testkit.MemoryKeySource;
import io.keywarden.delivery.AccessListener;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.TestKeys;
import io.keywarden.tests.support.TestPolicies;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * open+read+close latency of KeyFS against the same loop on a tmpfs file, in the same run, with
 * 1 and 8 concurrent reader threads (a real process of another uid). Prints figures; asserts
 * nothing about time. Run: {@code ./mvnw -B -q install -DskipTests -DskipITs && ./mvnw -B -Pbench -pl tests verify}
 */
class DeliveryBench {
    static final int LENGTH = TestPolicies.KEY_LENGTH;
    /** A dev key: {@code sk-dev-} and 48 characters. */
    static final int DEV_LENGTH = 55;
    static final int OPS = Integer.getInteger("bench.opens", 20_000);
    /** Each setup measured this many times in turn ({@code -Dbench.repeats}). */
    static final int REPEATS = Integer.getInteger("bench.repeats", 3);
    /** Reader counts measured ({@code -Dbench.readers=1,8}). */
    static final int[] READERS = java.util.Arrays.stream(System.getProperty("bench.readers", "1,8").split(","))
            .map(String::trim).mapToInt(Integer::parseInt).toArray();
    /** Also with the readers pinned to one cpu ({@code -Dbench.pinned=false}: unpinned only). */
    static final boolean PINNED = Boolean.parseBoolean(System.getProperty("bench.pinned", "true"));

    @Test
    void keyFsAgainstTmpfs() throws Exception {
        Requirements.rootAndFuse();
        KwRead.binary();
        Policy policy = PolicyLoader.parse(TestPolicies.ALICE, "bench.yaml");
        MemoryKeySource keys = new MemoryKeySource();
        var issued = TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), Instant.now().plus(Duration.ofHours(1)));
        keys.set("alice", "openai", issued);
        // KeyFS's clock: moved on to take a key past its first seconds (direct I/O) into the page cache.
        io.keywarden.testkit.ManualClock clock = new io.keywarden.testkit.ManualClock(Instant.now());
        // -Dbench.threadDescriptors=false: attestation recognises cached threads by start time (kernels before 6.9).
        boolean descriptors = Boolean.parseBoolean(System.getProperty("bench.threadDescriptors", "true"));
        KeyFs fs = TestKeyFs.of(policy, keys, AccessListener.NONE, clock, Duration.ofSeconds(5),
                io.keywarden.attestation.ProcAttestor.system(descriptors));
        Path mnt = Files.createTempDirectory("kw-bench-fuse-");
        Path floorMnt = Files.createTempDirectory("kw-bench-floor-");
        Path attestedMnt = Files.createTempDirectory("kw-bench-attested-");
        io.keywarden.tests.support.NoopFuse noop = new io.keywarden.tests.support.NoopFuse(issued.secretCopy());
        Path tmp = Files.createTempDirectory("kw-bench-tmpfs-");
        FuseSession.Options opts = FuseSession.Options.defaults("keywarden");
        // The daemon as it ships (launcher's JVM flags, `keywarden dev`: its lease manager, ledger and
        // metrics behind KeyFS), unless -Dbench.daemon=false or the jar is not built.
        Path daemonDir = Files.createTempDirectory("kw-bench-daemon-");
        // Traversable by the reader's uid (a temporary directory is its owner's alone).
        Files.setPosixFilePermissions(daemonDir, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        Path daemonMnt = daemonDir.resolve("mnt");
        Files.createDirectories(daemonMnt);
        boolean withDaemon = Boolean.parseBoolean(System.getProperty("bench.daemon", "true"))
                && Files.exists(Path.of(System.getProperty("keywarden.jar", "../daemon/target/keywarden.jar")));
        io.keywarden.tests.support.Daemon daemon = null;
        if (Boolean.getBoolean("bench.pinServer")) {
            opts = opts.pinnedTo(0);
        }
        try (io.keywarden.tests.support.FuseUringSwitch uring = io.keywarden.tests.support.FuseUringSwitch.fromProperty();
             FuseSession s = FuseSession.mount(mnt, fs, opts);
             FuseSession floor = FuseSession.mount(floorMnt, noop, opts);
             // The floor with KeyFS's attestation of each open (a cache of its own, the same descriptors).
             io.keywarden.attestation.ProcAttestor floorAttestor = io.keywarden.attestation.ProcAttestor.system(descriptors);
             FuseSession attestedFloor = FuseSession.mount(attestedMnt,
                     new io.keywarden.tests.support.NoopFuse(issued.secretCopy(), floorAttestor), opts);
             TmpfsDelivery t = TmpfsDelivery.open(tmp, true)) {
            fs.attach(s);
            Path daemonFile = daemonMnt.resolve("openai/api_key");
            if (withDaemon) {
                daemon = io.keywarden.tests.support.Daemon.start(java.util.Map.of("SUDO_UID", "1001"), "dev", "--mount",
                        daemonMnt.toString(), "--audit", daemonDir.resolve("audit.jsonl").toString(), "--admin-socket",
                        daemonDir.resolve("admin.sock").toString(), "--listen", "127.0.0.1:0");
                daemon.awaitOut("serving KeyFS", 30);
                java.util.stream.Stream.concat(daemon.out.stream(), daemon.err.stream())
                        .filter(l -> l.contains("requests through")).findFirst()
                        .ifPresent(l -> System.out.println("the daemon (" + System.getProperty("keywarden.jvmOpts",
                                io.keywarden.tests.support.Daemon.shippedJvmFlags())
                                + "): " + l.substring(l.indexOf("KeyFS at"))));
                KwRead.run(1001, null, daemonFile, 1, 10, "sk-dev-", DEV_LENGTH);
                // A key is served through the page cache once 10 s old (KeyFsInodes.CACHE_AFTER_MILLIS):
                // waited for as the kernel shows it, the file's pages resident after a read.
                io.keywarden.testkit.Await.until(Duration.ofSeconds(60), () -> {
                    io.keywarden.tests.support.Proc.Result r = io.keywarden.tests.support.Proc.as(1001, "sh", "-c",
                            "cat \"$1\" > /dev/null && fincore -n -b -o RES \"$1\"", "sh", daemonFile.toString());
                    return r.ok() && !r.out().trim().equals("0");
                }, () -> "the daemon's api_key was never served through the page cache");
            }
            t.publish(policy.workload("alice").orElseThrow(), "openai", issued);
            Path fuseFile = mnt.resolve("openai/api_key");
            Path tmpfsFile = tmp.resolve("alice/openai/api_key");
            // The floor: a no-op file system serving the same bytes from the page cache (one OPEN an
            // open), as deep in its mount as KeyFS's api_key; and the same with each open attested.
            Path floorFile = floorMnt.resolve("k/c");
            Path attestedFile = attestedMnt.resolve("k/c");
            System.out.println("== KeyFS vs tmpfs: open+read-to-EOF+close of a " + LENGTH + "-byte key, reader uid 1001, "
                    + (Boolean.getBoolean("bench.pinServer") ? "FUSE workers pinned to cpu 0" : "FUSE workers unpinned")
                    + ", cached threads known by " + (descriptors ? "a pidfd" : "start time") + ", requests through "
                    + (s.servesOverIoUring() ? "io_uring" : "/dev/fuse reads") + " ==");
            System.out.printf("%-42s %10s %10s %10s %10s %8s %8s%n", "setup", "median µs", "mean µs", "p99 µs", "opens/s",
                    "errors", "bad");
            for (int threads : READERS) {
                for (String cpus : PINNED ? new String[] {null, System.getProperty("bench.readerCpu", "1")} : new String[] {null}) {
                    int per = OPS / threads;
                    // Interleaved repetitions: on a shared VM an open's median is bimodal from run to
                    // run (where the scheduler puts the reader and the server's thread), so each setup
                    // is measured REPEATS times in turn and read by the median of its medians.
                    List<KwRead.Stats> tfs = new ArrayList<>();
                    List<KwRead.Stats> directs = new ArrayList<>();
                    List<KwRead.Stats> cacheds = new ArrayList<>();
                    List<KwRead.Stats> noops = new ArrayList<>();
                    List<KwRead.Stats> attesteds = new ArrayList<>();
                    List<KwRead.Stats> daemons = new ArrayList<>();
                    for (int rep = 0; rep < REPEATS; rep++) {
                        // A new key: its first seconds are direct I/O (three round trips an open) ...
                        var key = TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), Instant.now().plus(Duration.ofHours(1)));
                        keys.set("alice", "openai", key);
                        fs.keyIssued("alice", "openai", key);
                        KwRead.run(1001, cpus, fuseFile, threads, Math.min(per, 2000), "sk-alice-", LENGTH);
                        tfs.add(KwRead.run(1001, cpus, tmpfsFile, threads, per, "sk-alice-", LENGTH));
                        directs.add(KwRead.run(1001, cpus, fuseFile, threads, per, "sk-alice-", LENGTH));
                        // ... then through the page cache (one OPEN an open).
                        clock.advance(Duration.ofSeconds(11));
                        KwRead.run(1001, cpus, fuseFile, threads, Math.min(per, 2000), "sk-alice-", LENGTH);
                        cacheds.add(KwRead.run(1001, cpus, fuseFile, threads, per, "sk-alice-", LENGTH));
                        KwRead.run(1001, cpus, floorFile, threads, Math.min(per, 2000), "sk-alice-", LENGTH);
                        noops.add(KwRead.run(1001, cpus, floorFile, threads, per, "sk-alice-", LENGTH));
                        KwRead.run(1001, cpus, attestedFile, threads, Math.min(per, 2000), "sk-alice-", LENGTH);
                        attesteds.add(KwRead.run(1001, cpus, attestedFile, threads, per, "sk-alice-", LENGTH));
                        if (withDaemon) {
                            KwRead.run(1001, cpus, daemonFile, threads, Math.min(per, 2000), "sk-dev-", DEV_LENGTH);
                            daemons.add(KwRead.run(1001, cpus, daemonFile, threads, per, "sk-dev-", DEV_LENGTH));
                        }
                    }
                    KwRead.Stats tf = medianOf(tfs);
                    KwRead.Stats direct = medianOf(directs);
                    KwRead.Stats cached = medianOf(cacheds);
                    KwRead.Stats noopCached = medianOf(noops);
                    KwRead.Stats attestedCached = medianOf(attesteds);
                    if (REPEATS > 1) {
                        System.out.printf("%-42s %s%n", "medians of each repetition, µs:", "tmpfs " + medians(tfs)
                                + "; KeyFS cached " + medians(cacheds) + "; no-op " + medians(noops) + "; no-op attested "
                                + medians(attesteds) + (withDaemon ? "; daemon " + medians(daemons) : ""));
                        System.out.printf("%-42s %s%n", "means of each repetition, µs:", "tmpfs " + means(tfs)
                                + "; KeyFS cached " + means(cacheds) + "; no-op " + means(noops) + "; no-op attested "
                                + means(attesteds) + (withDaemon ? "; daemon " + means(daemons) : ""));
                    }
                    String label = threads + " reader" + (threads == 1 ? "" : "s") + (cpus == null ? ", unpinned" : ", pinned cpu " + cpus);
                    print("tmpfs, " + label, tf);
                    print("KeyFS direct, " + label, direct);
                    print("KeyFS cached, " + label, cached);
                    print("no-op FUSE cached, " + label, noopCached);
                    print("no-op FUSE attesting, " + label, attestedCached);
                    if (withDaemon) {
                        print("daemon (shipped flags) cached, " + label, medianOf(daemons));
                    }
                    ratio("ratio KeyFS direct/tmpfs", direct, tf);
                    ratio("ratio KeyFS cached/tmpfs", cached, tf);
                    ratio("ratio no-op cached/tmpfs (floor)", noopCached, tf);
                    ratio("ratio no-op attesting/tmpfs", attestedCached, tf);
                    if (withDaemon) {
                        ratio("ratio daemon cached/tmpfs", medianOf(daemons), tf);
                    }
                }
            }
        } finally {
            if (daemon != null) {
                try {
                    daemon.stop();
                } finally {
                    daemon.close();
                    if (io.keywarden.linux.Mounts.at(daemonMnt).isPresent()) {
                        io.keywarden.linux.Mounts.detach(daemonMnt);
                    }
                }
            }
            io.keywarden.tests.support.Proc.run("rm", "-rf", daemonDir.toString());
            Files.deleteIfExists(mnt);
            Files.deleteIfExists(floorMnt);
            Files.deleteIfExists(attestedMnt);
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * The repetitions read as one: the median of their medians (p99 from that repetition), the
     * median of their means and of their wall times; errors and bad reads summed.
     */
    static KwRead.Stats medianOf(List<KwRead.Stats> runs) {
        List<KwRead.Stats> sorted = new ArrayList<>(runs);
        sorted.sort(java.util.Comparator.comparingLong(KwRead.Stats::medianNs));
        KwRead.Stats m = sorted.get(sorted.size() / 2);
        long bad = runs.stream().mapToLong(KwRead.Stats::bad).sum();
        long errors = runs.stream().mapToLong(KwRead.Stats::errors).sum();
        long mean = runs.stream().mapToLong(KwRead.Stats::meanNs).sorted().skip(runs.size() / 2).findFirst().orElse(0);
        long wall = runs.stream().mapToLong(KwRead.Stats::wallNs).sorted().skip(runs.size() / 2).findFirst().orElse(0);
        return new KwRead.Stats(m.reads(), bad, errors, m.firstErrno(), m.medianNs(), m.p99Ns(), m.openStale(), mean, wall);
    }

    private static String medians(List<KwRead.Stats> runs) {
        return runs.stream().map(r -> String.format("%.1f", r.medianNs() / 1000.0))
                .collect(java.util.stream.Collectors.joining(" "));
    }

    private static String means(List<KwRead.Stats> runs) {
        return runs.stream().map(r -> String.format("%.1f", r.meanNs() / 1000.0))
                .collect(java.util.stream.Collectors.joining(" "));
    }

    private static void print(String label, KwRead.Stats s) {
        System.out.printf("%-42s %10.1f %10.1f %10.1f %10.0f %8d %8d%n", label, s.medianNs() / 1000.0, s.meanNs() / 1000.0,
                s.p99Ns() / 1000.0, s.opensPerSecond(), s.errors(), s.bad());
    }

    /** {@code s} over {@code base}: by median, by mean, by p99 (the mean is the throughput's inverse times the readers). */
    private static void ratio(String label, KwRead.Stats s, KwRead.Stats base) {
        System.out.printf("%-42s %10.1fx %9.1fx %9.1fx%n", label, (double) s.medianNs() / base.medianNs(),
                (double) s.meanNs() / base.meanNs(), (double) s.p99Ns() / base.p99Ns());
    }
}
