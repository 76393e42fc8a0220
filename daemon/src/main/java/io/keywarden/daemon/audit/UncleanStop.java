package io.keywarden.daemon.audit;

import com.fasterxml.jackson.core.type.TypeReference;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What a daemon that did not stop cleanly (killed, OOM, a crash: its ledger does not end with
 * {@code daemon.stopped}) left behind: the last record it wrote, and the leases its ledger shows
 * issued and never revoked nor expired, still valid at their issuer until their {@code expires_at}
 * (their tokens died with the process, so this daemon cannot revoke them; an operator can, at the
 * issuer, by lease id or provider key id). Read from the ledger's last two segments.
 */
public final class UncleanStop {
    private static final TypeReference<Map<String, Object>> MAP = new TypeReference<>() {
    };

    private UncleanStop() {
    }

    /** The last record and the leases left alive, by lease id (each its last issued/refreshed record). */
    public record Finding(Map<String, Object> last, boolean torn, List<Map<String, Object>> leftAlive) {
    }

    /**
     * Empty when {@code ledger} was new or its last record at open was {@code daemon.stopped};
     * else what the previous run left ({@code now}: leases expired by then are not listed).
     */
    public static Optional<Finding> of(Ledger ledger, Instant now) throws IOException {
        Optional<Map<String, Object>> last = ledger.lastAtOpen();
        if (last.isEmpty() && !ledger.tornAtOpen() || last.isPresent() && "daemon.stopped".equals(last.get().get("event"))) {
            return Optional.empty();
        }
        Map<String, Map<String, Object>> alive = new LinkedHashMap<>();
        List<Path> segments = LedgerFiles.segments(ledger.file());
        for (Path seg : segments.subList(Math.max(0, segments.size() - 2), segments.size())) {
            try (BufferedReader in = Files.newBufferedReader(seg, StandardCharsets.UTF_8)) {
                for (String line; (line = in.readLine()) != null; ) {
                    if (line.isBlank() || line.length() > MergedLedger.MAX_LINE) {
                        continue;
                    }
                    Map<String, Object> r;
                    try {
                        r = Canonical.mapper().readValue(line, MAP);
                    } catch (IOException e) {
                        continue;
                    }
                    if (!(r.get("lease_id") instanceof String id)) {
                        continue;
                    }
                    switch (String.valueOf(r.get("event"))) {
                        case "key.issued", "key.refreshed" -> alive.put(id, r);
                        case "key.revoked", "key.expired", "key.orphaned" -> alive.remove(id);
                        default -> { }
                    }
                }
            }
        }
        List<Map<String, Object>> left = new ArrayList<>();
        for (Map<String, Object> r : alive.values()) {
            try {
                if (r.get("expires_at") instanceof String at && Instant.parse(at).isAfter(now)) {
                    left.add(r);
                }
            } catch (DateTimeParseException e) {
                left.add(r);
            }
        }
        return Optional.of(new Finding(last.orElse(Map.of()), ledger.tornAtOpen(), left));
    }
}
