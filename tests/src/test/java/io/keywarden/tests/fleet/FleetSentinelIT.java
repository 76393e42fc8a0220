package io.keywarden.tests.fleet;

import io.keywarden.tests.support.FleetNode;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * {@link FleetFailover} on a real Redis master watched by three sentinels (Debian's
 * {@code redis-server} in sentinel mode, quorum 2): the config names the sentinels and the master.
 */
class FleetSentinelIT extends FleetFailover {
    static final String MASTER = "kwmaster";

    @Override
    Map<Integer, Process> startRedis(Path dir) throws Exception {
        return FleetNode.sentinels(dir, MASTER);
    }

    List<Integer> sentinelPorts() {
        return redis.keySet().stream().skip(2).toList();
    }

    @Override
    String fleetRedis() {
        StringBuilder s = new StringBuilder();
        sentinelPorts().forEach(p -> s.append(s.length() == 0 ? "" : ", ").append("redis://127.0.0.1:").append(p));
        return "{sentinel: [" + s + "], master: " + MASTER + "}";
    }

    /** The master the sentinels name now (every key lives there). */
    @Override
    int masterOf(String key) {
        String addr = cli(sentinelPorts().get(0), "sentinel", "get-master-addr-by-name", MASTER);
        return Integer.parseInt(addr.lines().skip(1).findFirst().orElseThrow().trim());
    }
}
