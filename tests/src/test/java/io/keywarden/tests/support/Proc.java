package io.keywarden.tests.support;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs real processes, optionally as another uid (setpriv), with a bounded wait. */
public final class Proc {
    public record Result(int code, String out, String err) {
        public boolean ok() {
            return code == 0;
        }
    }

    private Proc() {
    }

    public static Result run(String... cmd) {
        return exec(List.of(cmd), java.util.Map.of());
    }

    /** Runs {@code cmd} with {@code env} added to this JVM's environment. */
    public static Result withEnv(java.util.Map<String, String> env, String... cmd) {
        return exec(List.of(cmd), env);
    }

    /** As {@link #withEnv(java.util.Map, String...)}, for a command that may take up to {@code limit}. */
    public static Result withEnv(java.time.Duration limit, java.util.Map<String, String> env, String... cmd) {
        return exec(List.of(cmd), env, limit.toSeconds());
    }

    /** Runs {@code cmd} as {@code uid}:{@code uid} with no supplementary groups. */
    public static Result as(int uid, String... cmd) {
        List<String> full = new ArrayList<>(List.of("setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups"));
        full.addAll(List.of(cmd));
        return exec(full, java.util.Map.of());
    }

    private static Result exec(List<String> cmd, java.util.Map<String, String> env) {
        return exec(cmd, env, 60);
    }

    private static Result exec(List<String> cmd, java.util.Map<String, String> env, long seconds) {
        try {
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.environment().putAll(env);
            Process p = pb.start();
            p.getOutputStream().close();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            Thread t1 = pump(p.getInputStream(), out);
            Thread t2 = pump(p.getErrorStream(), err);
            if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("timed out: " + cmd);
            }
            t1.join(5000);
            t2.join(5000);
            return new Result(p.exitValue(), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new AssertionError("cannot run " + cmd + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
    }

    private static Thread pump(InputStream in, ByteArrayOutputStream out) {
        Thread t = new Thread(() -> {
            try {
                in.transferTo(out);
            } catch (IOException e) {
                // the process went away; what was read is kept
            }
        });
        t.setDaemon(true);
        t.start();
        return t;
    }
}
