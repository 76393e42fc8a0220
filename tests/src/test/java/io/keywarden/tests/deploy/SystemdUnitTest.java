package io.keywarden.tests.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.keywarden.daemon.config.Config;
import io.keywarden.daemon.config.ConfigLoader;
import io.keywarden.tests.support.Proc;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The VM unit: systemd accepts it without a warning, it grants what FUSE needs, and it uses no
 * option that gives the service a mount namespace of its own (systemd makes that namespace a slave
 * of the host's, so the FUSE mount would never reach the agents on the machine).
 */
class SystemdUnitTest {
    static final Path DEPLOY = Path.of(System.getProperty("keywarden.repo", ".."), "deploy");
    static final Path UNIT = DEPLOY.resolve("systemd/keywarden.service");
    static final Set<String> NAMESPACING = Set.of("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
            "PrivateMounts", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "ExecPaths", "NoExecPaths",
            "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths", "ProtectKernelModules", "ProtectKernelTunables",
            "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc", "ProcSubset", "ProtectHostname", "RootDirectory",
            "RootImage", "MountFlags", "PrivateNetwork", "PrivateUsers", "PrivateIPC", "NetworkNamespacePath");

    static Map<String, List<String>> service() throws Exception {
        Map<String, List<String>> out = new HashMap<>();
        boolean in = false;
        for (String line : Files.readAllLines(UNIT)) {
            if (line.startsWith("[")) {
                in = line.equals("[Service]");
            } else if (in && !line.isBlank() && !line.startsWith("#")) {
                int eq = line.indexOf('=');
                out.computeIfAbsent(line.substring(0, eq), k -> new ArrayList<>()).add(line.substring(eq + 1));
            }
        }
        return out;
    }

    @Test
    void systemdAcceptsTheUnitWithoutWarnings() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/systemd-analyze")), "needs systemd-analyze (package systemd)");
        Path dir = Files.createTempDirectory("kw-unit-");
        try {
            Path copy = Files.copy(UNIT, dir.resolve("keywarden.service"));
            Proc.Result r = Proc.run("systemd-analyze", "verify", copy.toString());
            List<String> about = (r.out() + r.err()).lines().filter(l -> l.contains("keywarden.service")).toList();
            assertEquals(List.of(), about, "systemd-analyze verify");
            assertEquals(0, r.code(), r.err());
        } finally {
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    @Test
    void theServiceMayMountFuseAndItsMountReachesTheHost() throws Exception {
        Map<String, List<String>> s = service();
        for (String key : s.keySet()) {
            assertTrue(!NAMESPACING.contains(key), key + "= gives the service its own mount namespace");
        }
        assertTrue(s.get("CapabilityBoundingSet").get(0).contains("CAP_SYS_ADMIN"));
        assertEquals(List.of("/dev/fuse rw"), s.get("DeviceAllow"));
        assertEquals(List.of("yes"), s.get("NoNewPrivileges"));
        assertTrue(s.get("Environment").contains("\"JAVA_OPTS=" + io.keywarden.tests.support.Daemon.shippedJvmFlags() + "\""),
                "quoted (the value has spaces), and the launcher's daemon flags: " + s.get("Environment"));
        String exec = s.get("ExecStart").get(0);
        assertTrue(exec.endsWith(" run --config /etc/keywarden/config.yaml"), exec);
        Config example = ConfigLoader.load(DEPLOY.resolve("examples/config.yaml"), Map.of("NODE_NAME", "vm-1"));
        assertEquals(Path.of("/run/keywarden-admin/admin.sock"), example.admin().socket(),
                "the unit's RuntimeDirectory holds the example config's admin socket");
        assertEquals(List.of("keywarden-admin"), s.get("RuntimeDirectory"));
        assertEquals(Path.of("/var/log/keywarden"), example.audit().file().getParent());
        assertEquals(List.of("keywarden"), s.get("LogsDirectory"));
    }
}
