package io.keywarden.daemon;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The daemon's layering, checked over every main source file's references to
 * {@code io.keywarden.daemon.*}: a package may use its own level and those below, never one above;
 * {@code ops} uses nothing of the daemon at all (everyone may report to it). The modules below the
 * daemon (native, policies, attestation, delivery) are held apart by the Maven enforcer.
 * <pre>
 *   8  cli, Main
 *   7  config (the loader: it builds each component's own settings record)
 *   6  runtime
 *   5  gateway, admin, csi, handover
 *   4  lifecycle (leases), audit, guard, hook, fleet, blocks
 *   (3  the issuers module, io.keywarden.issuer: below the daemon, which it cannot reach at all)
 *   2  net, ops, logging, and the root package's BuildInfo, InputProblem, RuntimeFailure
 * </pre>
 */
class LayeringTest {
    static final Map<String, Integer> LEVEL = Map.ofEntries(Map.entry("cli", 8), Map.entry("Main", 8),
            Map.entry("runtime", 6), Map.entry("gateway", 5), Map.entry("admin", 5), Map.entry("csi", 5),
            Map.entry("handover", 5), Map.entry("lifecycle", 4), Map.entry("audit", 4), Map.entry("guard", 4),
            Map.entry("hook", 4), Map.entry("fleet", 4), Map.entry("blocks", 4), Map.entry("config", 7), Map.entry("net", 2),
            Map.entry("ops", 2), Map.entry("logging", 2), Map.entry("BuildInfo", 2), Map.entry("InputProblem", 2),
            Map.entry("RuntimeFailure", 2));
    static final Pattern REF = Pattern.compile("io\\.keywarden\\.daemon\\.([A-Za-z]\\w*)");
    static final Path MAIN = Path.of("src/main/java/io/keywarden/daemon");

    /** The unit a file belongs to: its package under the daemon, or its class name in the root package. */
    static String unitOf(Path file) {
        Path rel = MAIN.relativize(file);
        return rel.getNameCount() == 1 ? rel.toString().replace(".java", "") : rel.getName(0).toString();
    }

    /** Every upward reference in {@code source} (of unit {@code unit}), as "unit -> used". */
    static List<String> violations(String unit, String source) {
        Integer mine = LEVEL.get(unit);
        List<String> out = new ArrayList<>();
        if (mine == null) {
            out.add(unit + " has no level: add it to LayeringTest.LEVEL");
            return out;
        }
        Matcher m = REF.matcher(source);
        while (m.find()) {
            String used = m.group(1);
            if (used.equals(unit)) {
                continue;
            }
            Integer theirs = LEVEL.get(used);
            if (theirs == null) {
                out.add(unit + " -> " + used + " (no level)");
            } else if (unit.equals("ops") || theirs > mine) {
                out.add(unit + " -> " + used);
            }
        }
        return out;
    }

    @Test
    void noPackageReachesUp() throws IOException {
        List<String> all = new ArrayList<>();
        try (Stream<Path> files = Files.walk(MAIN)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                for (String v : violations(unitOf(f), Files.readString(f))) {
                    all.add(MAIN.relativize(f) + ": " + v);
                }
            }
        }
        assertEquals(List.of(), all.stream().distinct().toList(), "upward references");
    }

    @Test
    void anUpwardReferenceWouldFail() {
        assertEquals(List.of("lifecycle -> gateway"), violations("lifecycle",
                "package io.keywarden.daemon.lifecycle;\nimport io.keywarden.daemon.gateway.GatewayServer;\n"));
        assertEquals(List.of("ops -> net"), violations("ops", "import io.keywarden.daemon.net.HostPort;"));
        assertEquals(List.of("gateway -> config"), violations("gateway", "import io.keywarden.daemon.config.Config;"));
        assertTrue(violations("runtime", "import io.keywarden.issuer.Issuer; io.keywarden.daemon.ops.Metrics")
                .isEmpty(), "downward references are fine");
    }
}
