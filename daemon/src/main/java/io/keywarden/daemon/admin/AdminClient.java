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
import java.util.Map;

/**
 * The CLI's side of the admin API: one JSON request line, one JSON answer, over the daemon's Unix
 * socket. Apart from {@link AdminServer} so that a CLI call loads neither Vert.x nor a logger.
 */
public final class AdminClient {
    /** Made on first use: {@link #callFlat} needs none. */
    private static final class Mapper {
        static final ObjectMapper JSON = new ObjectMapper();
    }

    private AdminClient() {
    }

    /**
     * One request of flat fields (strings, numbers, booleans; nulls left out), its answer's top-level
     * scalar fields as text. With jackson-core's streaming reader and writer only: no object mapper to
     * start (~50 ms of a CLI call that has little else to do).
     */
    public static Map<String, String> callFlat(Path socket, Map<String, Object> request) throws IOException {
        com.fasterxml.jackson.core.JsonFactory f = new com.fasterxml.jackson.core.JsonFactory();
        java.io.StringWriter line = new java.io.StringWriter();
        try (com.fasterxml.jackson.core.JsonGenerator g = f.createGenerator(line)) {
            g.writeStartObject();
            for (Map.Entry<String, Object> e : request.entrySet()) {
                Object v = e.getValue();
                if (v instanceof String t) {
                    g.writeStringField(e.getKey(), t);
                } else if (v instanceof Boolean b) {
                    g.writeBooleanField(e.getKey(), b);
                } else if (v instanceof Number n) {
                    g.writeNumberField(e.getKey(), n.longValue());
                } else if (v != null) {
                    throw new IllegalArgumentException("not a flat field: " + e.getKey());
                }
            }
            g.writeEndObject();
        }
        Map<String, String> answer = new java.util.HashMap<>();
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            c.write(ByteBuffer.wrap((line + "\n").getBytes(StandardCharsets.UTF_8)));
            try (com.fasterxml.jackson.core.JsonParser p = f.createParser(Channels.newInputStream(c))) {
                if (p.nextToken() != com.fasterxml.jackson.core.JsonToken.START_OBJECT) {
                    throw new IOException("the answer is not a JSON object");
                }
                while (p.nextToken() == com.fasterxml.jackson.core.JsonToken.FIELD_NAME) {
                    String name = p.currentName();
                    com.fasterxml.jackson.core.JsonToken t = p.nextToken();
                    if (t.isScalarValue()) {
                        answer.put(name, p.getValueAsString());
                    } else {
                        p.skipChildren();
                    }
                }
            }
        }
        return answer;
    }

    public static JsonNode call(Path socket, ObjectNode request) throws IOException {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            // The line ends the request; the server answers and closes (no half-close from here).
            c.write(ByteBuffer.wrap((Mapper.JSON.writeValueAsString(request) + "\n").getBytes(StandardCharsets.UTF_8)));
            return Mapper.JSON.readTree(Channels.newInputStream(c));
        }
    }
}
