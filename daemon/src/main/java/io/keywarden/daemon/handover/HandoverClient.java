package io.keywarden.daemon.handover;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.daemon.InputProblem;
import io.keywarden.linux.Errno;
import io.keywarden.linux.LibC;
import io.keywarden.linux.NativeException;
import io.keywarden.linux.UnixSocket;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * The successor's side of an upgrade ({@code --takeover}): asks the daemon on the handover
 * socket for its state, boots with it, then says {@link #ready}. Closing without {@code ready}
 * (a failed boot) makes the old daemon serve again.
 */
public final class HandoverClient implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final UnixSocket socket;
    private final Path path;

    private HandoverClient(UnixSocket socket, Path path) {
        this.socket = socket;
        this.path = path;
    }

    /** Connects to the running daemon; empty when none listens there (then start normally). */
    public static Optional<HandoverClient> connect(Path handoverSocket) throws IOException {
        try {
            return Optional.of(new HandoverClient(UnixSocket.connect(handoverSocket), handoverSocket));
        } catch (NativeException e) {
            if (e.errno() == Errno.ENOENT || e.errno() == Errno.ECONNREFUSED) {
                return Optional.empty();
            }
            throw e;
        }
    }

    /** Asks for the takeover and receives the state (the descriptor is ours from here). */
    public Inheritance receive() throws IOException {
        socket.timeout(Duration.ofSeconds(60));
        HandoverServer.send(socket, Map.of("op", "takeover", "pid", ProcessHandle.current().pid(),
                "version", io.keywarden.daemon.BuildInfo.load().version(), "formats", Inheritance.FORMATS));
        JsonNode answer = JSON.readTree(socket.receive(4096).data());
        if (answer.has("refused")) {
            throw new InputProblem("keywarden: the daemon on " + path + " refused the handover: "
                    + answer.get("refused").asText());
        }
        UnixSocket.Frame f = socket.receive(Inheritance.MAX_BYTES);
        if (f.fd() < 0) {
            throw new IOException("the daemon on " + path + " sent its state without the /dev/fuse descriptor");
        }
        try {
            return Inheritance.decode(f.data(), f.fd());
        } catch (IOException e) {
            LibC.close(f.fd());
            throw e;
        }
    }

    /** This daemon serves: the old one may exit. */
    public void ready() throws IOException {
        HandoverServer.send(socket, Map.of("ready", true));
        socket.close();
    }

    /** Without {@link #ready}: the old daemon serves again. */
    @Override
    public void close() {
        socket.close();
    }
}
