package io.keywarden.tests.fleet;

import io.keywarden.tests.support.FleetNode;
import java.nio.file.Path;
import java.util.Map;

/**
 * {@link FleetFailover} on a real Redis Cluster: three masters, each with a replica
 * ({@code redis-server} in cluster mode on loopback ports); the config names every node as a seed.
 */
class FleetClusterIT extends FleetFailover {
    @Override
    Map<Integer, Process> startRedis(Path dir) throws Exception {
        return FleetNode.cluster(dir, 3);
    }

    @Override
    String fleetRedis() {
        StringBuilder seeds = new StringBuilder();
        redis.keySet().forEach(p -> seeds.append(seeds.length() == 0 ? "" : ", ").append("redis://127.0.0.1:").append(p));
        return "{cluster: [" + seeds + "]}";
    }

    @Override
    int masterOf(String key) {
        int alive = redis.entrySet().stream().filter(e -> e.getValue().isAlive()).findFirst().orElseThrow().getKey();
        return FleetNode.clusterMasterOf(alive, key);
    }
}
