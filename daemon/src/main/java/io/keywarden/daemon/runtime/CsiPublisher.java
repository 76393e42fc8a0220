package io.keywarden.daemon.runtime;

import io.keywarden.daemon.csi.CsiSettings;
import io.keywarden.daemon.audit.AuditTrail;
import io.keywarden.daemon.csi.CsiServer;
import io.keywarden.daemon.lifecycle.LeaseManager;
import io.keywarden.policy.Policy;
import io.keywarden.policy.Workload;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Supplier;

/**
 * What a CSI publish means to the daemon: each publish and unpublish is in the ledger, and a pod
 * whose service account names a workload ({@code spiffe://<td>/ns/<namespace>/sa/<serviceAccount>},
 * SPIRE's Kubernetes convention) gets that workload's keys issued ahead of its first read.
 */
final class CsiPublisher implements CsiServer.Listener {
    private final Supplier<Policy> policy;
    private final Supplier<LeaseManager> leases;
    private final AuditTrail audit;

    /** The CSI node plugin on {@code c.socket()}, serving {@code source} (the mount) into pods. */
    static void start(Core core, CsiSettings c, Path source, java.util.function.BooleanSupplier serving,
                      Supplier<LeaseManager> leases) throws java.io.IOException {
        core.components().add("csi", CsiServer.start(c.socket(), source, c.nodeId().orElse(core.spec().node()),
                io.keywarden.daemon.BuildInfo.load().version(), serving, new CsiPublisher(core.policy(), leases,
                        core.audit())));
    }

    CsiPublisher(Supplier<Policy> policy, Supplier<LeaseManager> leases, AuditTrail audit) {
        this.policy = policy;
        this.leases = leases;
        this.audit = audit;
    }

    @Override
    public void published(String volumeId, Path target, Map<String, String> pod) {
        Map<String, Object> f = new java.util.LinkedHashMap<>();
        f.put("volume_id", volumeId);
        f.put("target", target.toString());
        f.putAll(pod);
        String ns = pod.get("pod.namespace");
        String sa = pod.get("serviceAccount.name");
        java.util.List<String> warmed = new java.util.ArrayList<>();
        if (ns != null && sa != null) {
            for (Workload w : policy.get().workloads()) {
                if (w.spiffeId().path().equals("/ns/" + ns + "/sa/" + sa)) {
                    for (String k : w.keys()) {
                        leases.get().ensure(w, k);
                        warmed.add(w.name() + "/" + k);
                    }
                }
            }
        }
        f.put("preissued", warmed);
        audit.record(io.keywarden.daemon.audit.LedgerEvent.CSI_PUBLISHED, f);
    }

    @Override
    public void unpublished(String volumeId, Path target) {
        audit.record(io.keywarden.daemon.audit.LedgerEvent.CSI_UNPUBLISHED, Map.of("volume_id", volumeId, "target", target.toString()));
    }
}
