package io.keywarden.daemon.runtime;

import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.yaml.Problem;
import io.keywarden.policy.yaml.ProblemsException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.List;
import io.keywarden.daemon.lifecycle.Scheduler;
import java.time.Clock;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running policy, swapped whole when its file changes to a valid policy; an invalid change
 * is rejected with the same messages as {@code policy check} and the running policy stays.
 * Polls the file's content (editors and ConfigMap updates replace files in ways inotify misses).
 */
public final class PolicyWatcher implements Supplier<Policy>, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PolicyWatcher.class);

    /** Told of every outcome; {@code problems} is empty for a loaded policy. */
    public interface Listener {
        void loaded(Policy policy);

        void rejected(List<Problem> problems);
    }

    private final Path file;
    private final Function<Policy, List<Problem>> extraChecks;
    private final Listener listener;
    private volatile Policy current;
    private byte[] digest;
    private volatile Scheduler.Task polling;

    public PolicyWatcher(Path file, Policy initial, Function<Policy, List<Problem>> extraChecks, Listener listener) {
        this.file = file;
        this.current = initial;
        this.extraChecks = extraChecks;
        this.listener = listener;
        this.digest = digestOf(file);
    }

    /** Polls the file every {@code period} on the daemon's scheduler (one run at a time). */
    public PolicyWatcher start(Scheduler scheduler, Clock clock, java.time.Duration period) {
        polling = scheduler.every(clock, period, this::check);
        return this;
    }

    @Override
    public Policy get() {
        return current;
    }

    private static byte[] digestOf(Path f) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f));
        } catch (IOException e) {
            return new byte[0];
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    synchronized void check() {
        try {
            byte[] d = digestOf(file);
            if (Arrays.equals(d, digest)) {
                return;
            }
            digest = d;
            Policy p;
            try {
                p = PolicyLoader.load(file);
            } catch (ProblemsException e) {
                LOG.error("policy {} rejected, the running policy stays: {}", file, e.getMessage());
                listener.rejected(e.problems());
                return;
            }
            List<Problem> extra = extraChecks.apply(p);
            if (!extra.isEmpty()) {
                LOG.error("policy {} rejected, the running policy stays: {}", file, extra.get(0).format());
                listener.rejected(extra);
                return;
            }
            current = p;
            LOG.info("policy {} reloaded: {} keys, {} workloads", file, p.keys().size(), p.workloads().size());
            listener.loaded(p);
        } catch (RuntimeException e) {
            LOG.error("checking policy {} failed: {}", file, e.getMessage());
        }
    }

    @Override
    public void close() {
        Scheduler.Task t = polling;
        if (t != null) {
            t.cancel();
        }
    }
}
