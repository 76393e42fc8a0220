package io.keywarden.daemon.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Option;

/** Names the workload an operator acts on: by SPIFFE ID or by its name in the policy (exactly one). */
final class WhichWorkload {
    @Option(names = "--spiffe-id", paramLabel = "ID", description = "The workload's SPIFFE ID.")
    String spiffeId;

    @Option(names = "--workload", paramLabel = "NAME", description = "The workload's name in the policy.")
    String workload;

    ObjectNode into(ObjectNode req) {
        return spiffeId != null ? req.put("spiffe_id", spiffeId) : req.put("workload", workload);
    }

    String describe() {
        return spiffeId != null ? spiffeId : "workload " + workload;
    }
}
