package io.keywarden.daemon.blocks;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.daemon.lifecycle.KillSwitch;
import io.keywarden.policy.Policy;
import io.keywarden.policy.SpiffeId;
import io.keywarden.policy.Workload;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one owner of blocks, whoever sets them (an operator through the admin API, the spend guard,
 * the fleet): the persisted list by SPIFFE ID (stable across policy edits, unlike workload names)
 * and the {@link KillSwitch} the lease core consults on every issuance, by workload name, kept in
 * step. The list is a JSON object {spiffe_id: reason}, 0600, replaced atomically on every change,
 * so a restart or a takeover does not lift a block; {@link #apply} re-applies it to the workloads
 * of the policy in force (at start and on every reload). Revoking what a blocked workload holds is
 * the caller's: a block only stops new issuance.
 */
public final class BlockList {
    private static final Logger LOG = LoggerFactory.getLogger(BlockList.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;
    private final KillSwitch killSwitch;
    private final Supplier<Policy> policy;
    private final Map<String, String> bySpiffeId = new LinkedHashMap<>();

    private BlockList(Path file, KillSwitch killSwitch, Supplier<Policy> policy) {
        this.file = file;
        this.killSwitch = killSwitch;
        this.policy = policy;
    }

    /**
     * Loads {@code file} (absent: no blocks) and applies it to the policy in force. A file that
     * cannot be read is an error: blocks are never dropped silently.
     */
    public static BlockList load(Path file, KillSwitch killSwitch, Supplier<Policy> policy) throws IOException {
        BlockList b = new BlockList(file, killSwitch, policy);
        io.keywarden.linux.SafePaths.directory(file.toAbsolutePath().getParent(), io.keywarden.linux.SafePaths.PRIVATE,
                "the block list " + file);
        if (Files.exists(file)) {
            try {
                b.bySpiffeId.putAll(JSON.readValue(file.toFile(), new TypeReference<Map<String, String>>() {
                }));
            } catch (IOException e) {
                throw new IOException("the block list " + file + " cannot be read (" + e.getMessage()
                        + "); fix or remove it: blocks are never lifted silently", e);
            }
        }
        b.apply(policy.get());
        return b;
    }

    /** Every persisted block: SPIFFE ID to reason. */
    public synchronized Map<String, String> all() {
        return Map.copyOf(bySpiffeId);
    }

    /** Why {@code spiffeId} is blocked, or empty. */
    public synchronized Optional<String> reason(String spiffeId) {
        return Optional.ofNullable(bySpiffeId.get(spiffeId));
    }

    /**
     * Blocks {@code spiffeId}: enforced at once for its workload in the policy in force (whatever
     * happens to the file), then persisted. Taking access away is never held back: a list that
     * cannot be written is returned as a warning (the block holds until this daemon stops).
     */
    public synchronized Optional<String> block(String spiffeId, String reason) {
        workload(policy.get(), spiffeId).ifPresent(w -> killSwitch.block(w.name(), reason));
        bySpiffeId.put(spiffeId, reason);
        try {
            save();
            return Optional.empty();
        } catch (IOException e) {
            return Optional.of("the block is not persisted: " + e.getMessage());
        }
    }

    /**
     * Lifts the block of {@code spiffeId}: persisted first, then no longer enforced. When the list
     * cannot be written nothing changes (the exception says why): giving access back is all or nothing.
     * True when it was blocked (in the list or in force).
     */
    public synchronized boolean unblock(String spiffeId) throws IOException {
        String was = bySpiffeId.remove(spiffeId);
        try {
            save();
        } catch (IOException e) {
            if (was != null) {
                bySpiffeId.put(spiffeId, was);
            }
            throw e;
        }
        boolean enforced = workload(policy.get(), spiffeId).map(w -> killSwitch.unblock(w.name())).orElse(false);
        return was != null || enforced;
    }

    /** The persisted blocks, enforced for the workloads of {@code p} (at start and on every policy reload). */
    public synchronized void apply(Policy p) {
        bySpiffeId.forEach((id, reason) -> {
            Optional<Workload> w = workload(p, id);
            if (w.isPresent()) {
                killSwitch.block(w.get().name(), reason);
                LOG.warn("{} ({}) stays blocked: {}", w.get().name(), id, reason);
            } else {
                LOG.warn("blocked SPIFFE ID {} is not in the policy (the block is kept for when it returns)", id);
            }
        });
    }

    private static Optional<Workload> workload(Policy p, String spiffeId) {
        try {
            return p.workloadBySpiffeId(SpiffeId.parse(spiffeId));
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }

    private void save() throws IOException {
        io.keywarden.linux.SafePaths.replaceFile(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(bySpiffeId),
                "the block list");
    }
}
