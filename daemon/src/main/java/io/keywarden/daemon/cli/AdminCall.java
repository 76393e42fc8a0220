package io.keywarden.daemon.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.keywarden.daemon.RuntimeFailure;
import io.keywarden.daemon.UserError;
import io.keywarden.daemon.admin.AdminServer;
import java.io.IOException;
import java.net.SocketException;
import java.nio.file.Files;
import java.nio.file.Path;

/** One request to a running daemon's admin socket, with errors a user can act on. */
final class AdminCall {
    private AdminCall() {
    }

    static ObjectNode request(String op) {
        return new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode().put("op", op);
    }

    static JsonNode send(Path socket, ObjectNode req) {
        if (!Files.exists(socket)) {
            throw new RuntimeFailure("keywarden: no daemon admin socket at " + socket
                    + " (is keywarden running? --admin-socket PATH)");
        }
        JsonNode answer;
        try {
            answer = AdminServer.call(socket, req);
        } catch (SocketException e) {
            throw new RuntimeFailure("keywarden: cannot reach the daemon at " + socket + ": " + e.getMessage());
        } catch (IOException e) {
            throw new RuntimeFailure("keywarden: the daemon's answer could not be read: " + e.getMessage());
        }
        if (!answer.path("ok").asBoolean(false)) {
            throw new UserError("keywarden: the daemon refused: " + answer.path("error").asText("no reason"));
        }
        return answer;
    }
}
