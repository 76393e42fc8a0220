package io.keywarden.daemon.cli;

import io.keywarden.linux.LibC;
import io.keywarden.policy.Durations;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code keywarden exec -- CMD…}: runs CMD with its key in the environment, as spiffe-helper and
 * Vault Agent's process supervisor do. This process reads the key from the mount (so it is the
 * key's opener, and the lease is refreshed, not revoked, while it lives), watches the key's
 * {@code expires_at} and, when the key rotates, restarts CMD with the new key or signals it
 * (CMD then re-reads {@code $KEYWARDEN_KEY_FILE}). It exits with CMD's exit code.
 */
@Command(name = "exec", description = "Run a command with its key in an environment variable, keeping the key's lease"
        + " while the command lives and restarting (or signalling) it when the key rotates. Reading the key file at each"
        + " use stays the better way: the key never sits in an environment.",
        footer = {"%nExamples:",
                "  keywarden exec -- python3 agent.py",
                "  keywarden exec --key anthropic --env ANTHROPIC_API_KEY -- node agent.js",
                "  keywarden exec --on-rotate signal:HUP -- ./agent   # the agent re-reads $KEYWARDEN_KEY_FILE on SIGHUP"})
final class ExecCommand implements Callable<Integer> {
    @Option(names = "--mount", paramLabel = "DIR", description = "Where keys are served. Default: /run/keywarden as"
            + " root; otherwise a non-root 'keywarden dev' of this user ($XDG_RUNTIME_DIR/keywarden) when it exists.")
    Path mount;

    @Option(names = "--key", paramLabel = "KEY", defaultValue = "openai", description = "The key to read"
            + " (<mount>/<key>/api_key).")
    String key;

    @Option(names = "--env", paramLabel = "NAME", description = "The variable that holds the key. Default:"
            + " OPENAI_API_KEY for the key openai, otherwise <KEY>_API_KEY (e.g. ANTHROPIC_API_KEY).")
    String env;

    @Option(names = "--on-rotate", paramLabel = "restart|signal:NAME|none", defaultValue = "restart",
            description = "When the key rotates: restart the command with the new key (SIGTERM, then SIGKILL after"
                    + " --grace), send it a signal (e.g. signal:HUP), or do nothing.")
    String onRotate;

    @Option(names = "--grace", paramLabel = "DUR", defaultValue = "10s", description = "How long a restart waits for"
            + " the command to exit after SIGTERM before SIGKILL.")
    String grace;

    @Option(names = "--poll", paramLabel = "DUR", defaultValue = "2s", description = "How often expires_at is read"
            + " to notice a rotation (the previous key stays valid for a third of its lease after one).")
    String poll;

    @Parameters(paramLabel = "CMD", arity = "1..*", description = "The command and its arguments (after --).")
    List<String> command = new ArrayList<>();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    /** What a rotation does to the command. */
    record Rotation(String action, int signal) {
        static Rotation parse(String s) {
            if (s.equals("restart") || s.equals("none")) {
                return new Rotation(s, 0);
            }
            if (s.startsWith("signal:")) {
                String name = s.substring(7).toUpperCase(Locale.ROOT).replaceFirst("^SIG", "");
                Integer n = SIGNALS.get(name);
                if (n != null) {
                    return new Rotation("signal", n);
                }
            }
            throw new UserError("keywarden exec: --on-rotate must be restart, none or signal:NAME (NAME one of "
                    + String.join(", ", SIGNALS.keySet()) + "), not '" + s + "'");
        }
    }

    private static final Map<String, Integer> SIGNALS = new java.util.LinkedHashMap<>(Map.of(
            "HUP", 1, "INT", 2, "QUIT", 3, "USR1", 10, "USR2", 12, "TERM", 15));

    /**
     * Whether {@code signal} is ignored according to a {@code /proc/PID/status} text (its
     * {@code SigIgn} mask). A signal ignored here (SIGHUP under {@code nohup}) is ignored in the
     * command too, and a shell cannot trap a signal ignored on entry.
     */
    static boolean ignored(String procStatus, int signal) {
        for (String line : procStatus.split("\n")) {
            if (line.startsWith("SigIgn:")) {
                try {
                    return (Long.parseUnsignedLong(line.substring(7).trim(), 16) & (1L << (signal - 1))) != 0;
                } catch (NumberFormatException e) {
                    return false;
                }
            }
        }
        return false;
    }

    @Override
    public Integer call() throws Exception {
        Rotation rotation = Rotation.parse(onRotate);
        Duration graceTime = duration("--grace", grace);
        Duration pollEvery = duration("--poll", poll);
        if (pollEvery.compareTo(Duration.ofMillis(100)) < 0) {
            throw new UserError("keywarden exec: --poll must be at least 100ms");
        }
        if (!key.matches("[A-Za-z0-9._-]+")) {
            throw new UserError("keywarden exec: --key '" + key + "' is not a key name");
        }
        String var = env != null ? env : key.equals("openai") ? "OPENAI_API_KEY"
                : key.toUpperCase(Locale.ROOT).replaceAll("[^A-Z0-9]", "_") + "_API_KEY";
        if (!var.matches("[A-Za-z_][A-Za-z0-9_]*")) {
            throw new UserError("keywarden exec: --env '" + var + "' is not an environment variable name");
        }
        Path dir = (mount != null ? mount : defaultMount()).resolve(key);
        Path apiKey = dir.resolve("api_key");
        Path expiresAt = dir.resolve("expires_at");
        PrintWriter err = spec.commandLine().getErr();
        if (rotation.action().equals("signal") && ignored(procSelfStatus(), rotation.signal())) {
            err.println("keywarden exec: warning: " + onRotate.substring(7) + " is ignored in this process (started under"
                    + " nohup?); the command inherits that and may never see it (a shell cannot trap it): choose another"
                    + " signal, e.g. --on-rotate signal:USR1");
        }

        byte[] secret = read(apiKey);
        String seen = readExpiry(expiresAt);
        Process child = start(var, secret, apiKey);
        Arrays.fill(secret, (byte) 0);
        java.util.concurrent.atomic.AtomicReference<Process> current = new java.util.concurrent.atomic.AtomicReference<>(child);
        java.util.concurrent.atomic.AtomicInteger stop = new java.util.concurrent.atomic.AtomicInteger();
        // A stop asked of this process reaches the command; this process exits with its code. Noted
        // first, so that a restart under way when it comes passes it on to the command it starts.
        for (String name : new String[] {"TERM", "INT", "HUP"}) {
            sun.misc.Signal.handle(new sun.misc.Signal(name), s -> {
                stop.compareAndSet(0, s.getNumber());
                LibC.kill((int) current.get().pid(), s.getNumber());
            });
        }
        while (true) {
            if (current.get().waitFor(pollEvery.toMillis(), TimeUnit.MILLISECONDS)) {
                return current.get().exitValue();   // 128+N for a command killed by signal N, as a shell says
            }
            if (stop.get() != 0) {
                continue;   // stopping: no rotation, wait for the command to end
            }
            String now;
            try {
                now = readExpiry(expiresAt);
            } catch (UserError e) {
                err.println(e.getMessage() + "; the command keeps its last key");
                err.flush();
                continue;
            }
            if (now.equals(seen)) {
                continue;
            }
            seen = now;
            byte[] fresh;
            try {
                // This process opens the new lease: the previous one may end once the command has the new key.
                fresh = rotation.action().equals("none") ? new byte[0] : read(apiKey);
            } catch (UserError e) {
                err.println(e.getMessage() + "; the command keeps its last key");
                err.flush();
                continue;
            }
            switch (rotation.action()) {
                case "none" -> err.println("keywarden exec: " + key + " rotated (expires " + now + ")");
                case "signal" -> {
                    LibC.kill((int) current.get().pid(), rotation.signal());
                    err.println("keywarden exec: " + key + " rotated (expires " + now + "); signalled pid "
                            + current.get().pid());
                }
                default -> {
                    Process old = current.get();
                    old.destroy();
                    if (!old.waitFor(graceTime.toMillis(), TimeUnit.MILLISECONDS)) {
                        old.destroyForcibly().waitFor();
                    }
                    if (stop.get() != 0) {
                        Arrays.fill(fresh, (byte) 0);
                        return old.exitValue();   // a stop came during the restart: no new command
                    }
                    Process next = start(var, fresh, apiKey);
                    current.set(next);
                    int asked = stop.get();
                    if (asked != 0) {
                        LibC.kill((int) next.pid(), asked);   // it came while the command was starting
                    }
                    err.println("keywarden exec: " + key + " rotated (expires " + now + "); restarted the command as pid "
                            + next.pid());
                }
            }
            Arrays.fill(fresh, (byte) 0);
            err.flush();
        }
    }

    private Process start(String var, byte[] secret, Path apiKey) {
        ProcessBuilder pb = new ProcessBuilder(command).inheritIO();
        pb.environment().put(var, new String(secret, StandardCharsets.UTF_8).strip());
        pb.environment().put("KEYWARDEN_KEY_FILE", apiKey.toString());
        try {
            return pb.start();
        } catch (IOException e) {
            throw new UserError("keywarden exec: cannot run " + command.get(0) + ": " + e.getMessage());
        }
    }

    static Path defaultMount() {
        if (LibC.geteuid() != 0) {
            String xdg = System.getenv("XDG_RUNTIME_DIR");
            if (xdg != null && !xdg.isBlank() && Files.isDirectory(Path.of(xdg, "keywarden"))) {
                return Path.of(xdg, "keywarden");
            }
        }
        return io.keywarden.daemon.runtime.DevSpec.DEFAULT_MOUNT;
    }

    private byte[] read(Path apiKey) {
        try {
            byte[] b = Files.readAllBytes(apiKey);
            if (b.length == 0) {
                throw new UserError("keywarden exec: " + apiKey + " is empty (the key is not served to this process; see"
                        + " " + apiKey.resolveSibling("status") + ")");
            }
            return b;
        } catch (java.nio.file.AccessDeniedException e) {
            throw new UserError("keywarden exec: " + apiKey + ": permission denied (the policy does not serve this key to"
                    + " uid " + Integer.toUnsignedString(LibC.geteuid()) + " running " + ProcessHandle.current().info()
                    .command().orElse("java") + "; keywarden why --pid " + ProcessHandle.current().pid() + " says why)");
        } catch (java.nio.file.NoSuchFileException e) {
            throw new UserError("keywarden exec: " + apiKey + " does not exist (is keywarden serving " + key + " at "
                    + apiKey.getParent().getParent() + "? --mount DIR)");
        } catch (IOException e) {
            throw new UserError("keywarden exec: " + apiKey + ": " + e.getMessage());
        }
    }

    private String readExpiry(Path expiresAt) {
        try {
            return Files.readString(expiresAt, StandardCharsets.US_ASCII).strip();
        } catch (IOException e) {
            throw new UserError("keywarden exec: " + expiresAt + ": " + (e instanceof java.nio.file.AccessDeniedException
                    ? "permission denied" : e instanceof java.nio.file.NoSuchFileException ? "does not exist"
                    : e.getMessage()));
        }
    }

    private static Duration duration(String option, String v) {
        try {
            return Durations.parse(v);
        } catch (IllegalArgumentException e) {
            throw new UserError("keywarden exec: " + option + ": " + e.getMessage());
        }
    }

    private static String procSelfStatus() {
        try {
            return java.nio.file.Files.readString(java.nio.file.Path.of("/proc/self/status"));
        } catch (java.io.IOException e) {
            return "";
        }
    }
}
