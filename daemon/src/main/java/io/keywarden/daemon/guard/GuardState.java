package io.keywarden.daemon.guard;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The guard's counters and baselines on disk ({@code guard-state.json} beside the ledger), so a
 * restart neither resets a budget nor forgets a baseline: a JSON object {workload: counters}, 0600,
 * replaced atomically (write, fsync, rename). An unreadable file is an error naming it: budgets are
 * never reset silently.
 */
public final class GuardState {
    private static final ObjectMapper JSON = new ObjectMapper();

    private GuardState() {
    }

    /** One workload's windows (window numbers are epoch minutes, hours and days, UTC). */
    public record WorkloadState(long minute, long requestsMinute, long hour, long tokensHour, long day, long tokensDay,
                                List<Long> baseline, Map<String, Long> fired) {
    }

    public static Map<String, WorkloadState> load(Path file) throws IOException {
        io.keywarden.linux.SafePaths.directory(file.toAbsolutePath().getParent(), io.keywarden.linux.SafePaths.PRIVATE,
                "the guard state " + file);
        if (!Files.exists(file)) {
            return Map.of();
        }
        try {
            Map<String, WorkloadState> m = JSON.readValue(file.toFile(), new TypeReference<Map<String, WorkloadState>>() {
            });
            for (var e : m.entrySet()) {
                WorkloadState s = e.getValue();
                if (s == null || s.baseline() == null || s.fired() == null || s.tokensHour() < 0 || s.tokensDay() < 0) {
                    throw new IOException("workload '" + e.getKey() + "' has missing or negative counters");
                }
            }
            return m;
        } catch (IOException e) {
            throw new IOException("the guard state " + file + " cannot be read (" + e.getMessage()
                    + "); fix or remove it (removing it resets every budget window and baseline)");
        }
    }

    public static void save(Path file, Map<String, WorkloadState> state) throws IOException {
        io.keywarden.linux.SafePaths.replaceFile(file, JSON.writeValueAsBytes(state), "the state file");
    }
}
