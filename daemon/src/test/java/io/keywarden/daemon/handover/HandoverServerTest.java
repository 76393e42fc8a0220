package io.keywarden.daemon.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.linux.UnixSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** The handover's first exchange over a real Unix socket: the formats are agreed before anything stops. */
class HandoverServerTest {
    static final ObjectMapper JSON = new ObjectMapper();

    /** A daemon that records what it is asked and never hands anything over. */
    static final class Recording implements HandoverServer.Daemon {
        final List<String> calls = new CopyOnWriteArrayList<>();

        @Override
        public Inheritance handOver(long toPid) throws HandoverServer.Refused {
            calls.add("handOver " + toPid);
            throw new HandoverServer.Refused("the test daemon hands nothing over");
        }

        @Override
        public void handedOver(long toPid) {
            calls.add("handedOver");
        }

        @Override
        public void resume(Inheritance kept, String why) {
            calls.add("resume");
        }

        @Override
        public void refused(io.keywarden.linux.PeerCred peer, String why) {
            calls.add("refused " + why);
        }
    }

    static JsonNode hello(Path socket, Map<String, Object> hello) throws Exception {
        try (UnixSocket c = UnixSocket.connect(socket)) {
            c.timeout(Duration.ofSeconds(10));
            HandoverServer.send(c, hello);
            return JSON.readTree(new String(c.receive(4096).data(), StandardCharsets.UTF_8));
        }
    }

    @Test
    void aSuccessorThatReadsNoFormatThisDaemonWritesIsRefusedBeforeAnythingStops() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "the handover server answers root only");
        Path dir = Files.createTempDirectory("kw-handover-");
        Path socket = dir.resolve("handover.sock");
        Recording daemon = new Recording();
        long pid = ProcessHandle.current().pid();
        try (HandoverServer server = HandoverServer.start(socket, daemon)) {
            JsonNode future = hello(socket, Map.of("op", "takeover", "pid", pid, "version", "9.9.9", "formats", List.of(7, 8)));
            assertTrue(future.path("refused").asText().contains("reads handover formats [7,8], none of [1, 2, 3, 4]"),
                    future.toString());
            assertTrue(daemon.calls.stream().noneMatch(c -> c.startsWith("handOver")), "nothing stopped: " + daemon.calls);

            // A successor that names no formats reads format 1; one that reads 2 gets past the check.
            JsonNode old = hello(socket, Map.of("op", "takeover", "pid", pid, "version", "0.0.1"));
            assertEquals("the test daemon hands nothing over", old.path("refused").asText(), old.toString());
            JsonNode now = hello(socket, Map.of("op", "takeover", "pid", pid, "version", "1", "formats", List.of(1, 2)));
            assertEquals("the test daemon hands nothing over", now.path("refused").asText(), now.toString());
            assertEquals(2, daemon.calls.stream().filter(c -> c.startsWith("handOver")).count(), daemon.calls.toString());
        } finally {
            Files.deleteIfExists(socket);
            Files.deleteIfExists(dir);
        }
    }

    @Test
    void theNewestFormatBothKnowIsChosen() throws Exception {
        assertEquals(4, HandoverServer.format(JSON.readTree("{\"formats\":[1,2,3,4,5]}")));
        assertEquals(3, HandoverServer.format(JSON.readTree("{\"formats\":[1,2,3]}")), "a successor of format 3");
        assertEquals(2, HandoverServer.format(JSON.readTree("{\"formats\":[1,2]}")), "an older successor gets format 2");
        assertEquals(1, HandoverServer.format(JSON.readTree("{}")));
        assertEquals(1, HandoverServer.format(JSON.readTree("{\"formats\":[1]}")));
        assertEquals(-1, HandoverServer.format(JSON.readTree("{\"formats\":[\"x\", 5]}")));
    }
}
