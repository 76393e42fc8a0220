package io.keywarden.daemon.admin;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.ProcessGoneException;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.attestation.WorkloadAttestor;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Selector;
import io.keywarden.policy.Workload;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * {@code keywarden why}: the decision the daemon would make for a process (or, without one, for a
 * uid) and the first rule that fails, in words — the same checks, in the same order, as an open
 * ({@code AccessDecider}): who the process is, whether its workload is granted the key, the
 * workload's {@code readers}, and a block. Nothing is recorded and no key is touched.
 */
public final class Why {
    private final WorkloadAttestor identity;
    private final boolean spire;
    private final Supplier<Policy> policy;
    private final Supplier<Map<String, String>> blocked;
    private final ProcAttestor proc;

    public Why(WorkloadAttestor identity, boolean spire, Supplier<Policy> policy, Supplier<Map<String, String>> blocked,
               ProcAttestor proc) {
        this.identity = identity;
        this.spire = spire;
        this.policy = policy;
        this.blocked = blocked;
        this.proc = proc;
    }

    /** {@code {"decided": bool, "lines": [...]}} for a pid (uid null) or a uid (pid null); {@code key} null for every key. */
    ObjectNode explain(Integer pid, Long uid, String key) {
        ObjectNode out = AdminServer.JSON.createObjectNode();
        ArrayNode lines = out.putArray("lines");
        Policy p = policy.get();
        if (key != null && !p.keys().containsKey(key)) {
            lines.add("no key named '" + key + "' in the policy (keys: " + String.join(", ", p.keys().keySet()) + ")");
            return out.put("decided", true);
        }
        List<String> keys = key != null ? List.of(key) : List.copyOf(p.keys().keySet());
        if (pid != null) {
            return byPid(out, lines, pid, keys);
        }
        return byUid(out, lines, uid, keys, p);
    }

    private ObjectNode byPid(ObjectNode out, ArrayNode lines, int pid, List<String> keys) {
        ProcessInfo info;
        try {
            info = proc.attest(pid);
        } catch (ProcessGoneException e) {
            lines.add("pid " + pid + ": no such process (" + e.getMessage() + ")");
            return out.put("decided", false);
        }
        String caller = "pid " + pid + " (uid " + Integer.toUnsignedString(info.uid()) + ", exe "
                + info.exe().orElse("unreadable") + ")";
        Attestation a = identity.attest(pid, info.uid(), info.gid());
        if (!(a instanceof Attestation.Identified who)) {
            lines.add(caller + ": refused for every key — " + ((Attestation.Unidentified) a).reason());
            if (!spire && a.process() != null) {
                // The dev identity decides by the policy's selectors: the first one each workload fails.
                for (Workload w : policy.get().workloads()) {
                    Optional<Selector> miss = w.selectors().stream().filter(s -> !s.matches(a.process())).findFirst();
                    lines.add("  workload " + w.name() + ": " + (w.selectors().isEmpty() ? "has no selectors"
                            : miss.map(s -> "selector " + s + " does not match").orElse("matches")));
                }
            }
            return out.put("decided", true);
        }
        Workload w = who.workload();
        lines.add(caller + ": workload " + w.name() + " (" + who.spiffeId() + ")");
        for (String k : keys) {
            lines.add("  " + k + ": " + decide(w, k, Optional.of(a.process())));
        }
        return out.put("decided", true);
    }

    /** "allowed", or "refused — the first rule that fails". */
    private String decide(Workload w, String key, Optional<ProcessInfo> process) {
        if (!w.grants(key)) {
            return "refused — workload " + w.name() + " is not granted key " + key + " (its keys: "
                    + String.join(", ", w.keys()) + ")";
        }
        if (process.isPresent()) {
            Optional<String> r = w.readers().refusal(process.get());
            if (r.isPresent()) {
                return "refused — readers of workload " + w.name() + ": " + r.get();
            }
        }
        String block = blocked.get().get(w.name());
        if (block != null) {
            return "refused — workload " + w.name() + " is blocked: " + block + " (keywarden unblock --workload "
                    + w.name() + ")";
        }
        return "allowed" + (process.isEmpty() && !w.readers().isUnrestricted() ? " if the process also meets the"
                + " workload's readers" : "");
    }

    private ObjectNode byUid(ObjectNode out, ArrayNode lines, long uid, List<String> keys, Policy p) {
        if (spire) {
            lines.add("uid " + uid + ": SPIRE decides who a process is from its registration entries, which a uid alone"
                    + " does not settle; ask about a running process with --pid");
            return out.put("decided", false);
        }
        List<Workload> candidates = new ArrayList<>();
        for (Workload w : p.workloads()) {
            List<Selector> uids = w.selectors().stream().filter(s -> s.kind() == Selector.Kind.UNIX_UID).toList();
            if (!w.selectors().isEmpty() && (uids.isEmpty() || uids.stream().allMatch(s -> s.value().equals(
                    Long.toString(uid))))) {
                candidates.add(w);
            }
        }
        if (candidates.isEmpty()) {
            lines.add("uid " + uid + ": refused for every key — no workload of the policy selects unix:uid:" + uid);
            return out.put("decided", true);
        }
        for (Workload w : candidates) {
            List<String> other = w.selectors().stream().filter(s -> s.kind() != Selector.Kind.UNIX_UID)
                    .map(Selector::toString).toList();
            lines.add("uid " + uid + ": workload " + w.name() + " (" + w.spiffeId() + ")" + (other.isEmpty() ? ""
                    : " for a process that also matches " + String.join(" and ", other)));
            for (String k : keys) {
                if (w.readers().uids().isEmpty() || w.readers().uids().contains((int) uid)) {
                    lines.add("  " + k + ": " + decide(w, k, Optional.empty()));
                } else {
                    lines.add("  " + k + ": refused — readers of workload " + w.name() + ": uid " + uid
                            + " is not a permitted reader");
                }
            }
        }
        return out.put("decided", true);
    }

    /** Keys named for the message of an unknown key. */
    static List<String> names(Map<String, KeySpec> keys) {
        return List.copyOf(keys.keySet());
    }
}
