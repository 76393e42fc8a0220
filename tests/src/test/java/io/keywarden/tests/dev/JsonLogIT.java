package io.keywarden.tests.dev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** One logging pipeline: with KEYWARDEN_LOG_FORMAT=json every stderr line is JSON, System.Logger users included. */
class JsonLogIT {

    @Test
    void everyStderrLineIsJsonIncludingTheFuseLayers() throws Exception {
        Requirements.rootAndFuse();
        Path dir = Files.createTempDirectory("kw-jsonlog-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mnt = dir.resolve("mnt");
        int port = io.keywarden.tests.support.Ports.free();
        try (Daemon d = Daemon.start(Map.of("SUDO_UID", "1001", "KEYWARDEN_LOG_FORMAT", "json"), "dev", "--mount",
                mnt.toString(), "--audit", dir.resolve("audit.jsonl").toString(), "--admin-socket",
                dir.resolve("admin/admin.sock").toString(), "--listen", "127.0.0.1:" + port)) {
            d.awaitOut("serving KeyFS", 30);
            Proc.as(4242, "cat", mnt.resolve("openai/api_key").toString());
            // An outside umount: FuseSession (System.Logger) reports it, the runtime (SLF4J) stops.
            Proc.run("umount", "-l", mnt.toString());
            assertEquals(3, d.waitFor(30));
            ObjectMapper json = new ObjectMapper();
            List<String> loggers = new ArrayList<>();
            for (String line : d.err) {
                JsonNode n = json.readTree(line);
                assertTrue(n.isObject() && n.has("level") && n.has("message"), "not a JSON log line: " + line);
                assertTrue(n.path("ts").asText().matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z"),
                        "an RFC 3339 UTC timestamp: " + line);
                loggers.add(n.path("logger").asText());
            }
            assertTrue(loggers.contains("io.keywarden.fuse.FuseSession"), "System.Logger lines go the same way: " + loggers);
            assertTrue(loggers.contains("io.keywarden.daemon.audit.AuditTrail"), "the denial's WARN line: " + loggers);
        } finally {
            if (Mounts.at(mnt).isPresent()) {
                Mounts.detach(mnt);
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }
}
