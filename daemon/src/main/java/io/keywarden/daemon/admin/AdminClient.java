package io.keywarden.daemon.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The CLI's side of the admin API: one JSON request line, one JSON answer, over the daemon's Unix
 * socket. Apart from {@link AdminServer} so that a CLI call loads neither Vert.x nor a logger.
 */
public final class AdminClient {
    private static final ObjectMapper JSON = new ObjectMapper();

    private AdminClient() {
    }

    public static JsonNode call(Path socket, ObjectNode request) throws IOException {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            // The line ends the request; the server answers and closes (no half-close from here).
            c.write(ByteBuffer.wrap((JSON.writeValueAsString(request) + "\n").getBytes(StandardCharsets.UTF_8)));
            return JSON.readTree(Channels.newInputStream(c));
        }
    }
}
