package io.keywarden.tests.support;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** The shaded keywarden.jar run as a real process; its stdout and stderr are kept for assertions. */
public final class Daemon implements AutoCloseable {
    private final Process process;
    private final BlockingQueue<String> outLines = new LinkedBlockingQueue<>();
    public final List<String> out = new CopyOnWriteArrayList<>();
    public final List<String> err = new CopyOnWriteArrayList<>();

    private final List<Thread> pumps = new ArrayList<>();

    private Daemon(Process p) {
        this.process = p;
        pumps.add(pump(p.getInputStream(), out, outLines));
        pumps.add(pump(p.getErrorStream(), err, null));
    }

    public static Path jar() {
        Path jar = Path.of(System.getProperty("keywarden.jar", "../daemon/target/keywarden.jar"));
        if (!Files.exists(jar)) {
            throw new AssertionError("build daemon/target/keywarden.jar first (" + jar.toAbsolutePath() + ")");
        }
        return jar;
    }

    /** Runs the keywarden CLI once (e.g. {@code status}, {@code revoke}, {@code audit verify}) and waits for it. */
    public static Proc.Result cli(String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar", jar().toString()));
        cmd.addAll(List.of(args));
        return Proc.run(cmd.toArray(String[]::new));
    }

    /**
     * The JVM flags the launcher gives the daemon ({@code daemon_jvm=} in deploy/bin/keywarden): the
     * tests run the daemon as it ships. {@code -Dkeywarden.jvmOpts} replaces them (a side-by-side run).
     */
    public static String shippedJvmFlags() {
        try {
            Path launcher = Path.of(System.getProperty("keywarden.repo", ".."), "deploy/bin/keywarden");
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("(?m)^daemon_jvm=\"([^\"]*)\"$")
                    .matcher(java.nio.file.Files.readString(launcher));
            if (!m.find()) {
                throw new IllegalStateException("no daemon_jvm= line in " + launcher);
            }
            return m.group(1);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    public static Daemon start(Map<String, String> env, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        String jvm = System.getProperty("keywarden.jvmOpts", shippedJvmFlags());
        if (!jvm.isBlank()) {
            cmd.addAll(List.of(jvm.trim().split("\\s+")));
        }
        cmd.addAll(List.of("-jar", jar().toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(env);
        return new Daemon(pb.start());
    }

    private static Thread pump(java.io.InputStream in, List<String> into, BlockingQueue<String> queue) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
                for (String line; (line = r.readLine()) != null; ) {
                    into.add(line);
                    if (queue != null) {
                        queue.add(line);
                    }
                }
            } catch (IOException e) {
                // process ended
            }
        });
        t.setDaemon(true);
        t.start();
        return t;
    }

    /** Waits for a stdout line containing {@code text}. */
    public String awaitOut(String text, long seconds) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < end) {
            String line = outLines.poll(200, TimeUnit.MILLISECONDS);
            if (line != null && line.contains(text)) {
                return line;
            }
            if (line == null && !process.isAlive()) {
                break;
            }
        }
        throw new AssertionError("no '" + text + "' on stdout; stdout " + out + " stderr " + err);
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** Waits for the daemon to exit by itself; its exit code, after its last lines were read. */
    public int waitFor(long seconds) throws Exception {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            throw new AssertionError("daemon still running after " + seconds + " s; stderr " + err);
        }
        for (Thread t : pumps) {
            t.join(5000);
        }
        return process.exitValue();
    }

    public long pid() {
        return process.pid();
    }

    /** SIGTERM, then the exit code, with everything the daemon wrote until it exited. */
    public int stop() throws Exception {
        // Process.destroy() would also close our ends of its pipes and lose its last lines.
        process.toHandle().destroy();
        if (!process.waitFor(30, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("daemon did not stop on SIGTERM within 30 s");
        }
        for (Thread t : pumps) {
            t.join(5000);
        }
        return process.exitValue();
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
        }
    }
}
