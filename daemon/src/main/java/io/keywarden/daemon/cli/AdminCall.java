package io.keywarden.daemon.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.keywarden.daemon.RuntimeFailure;
import io.keywarden.daemon.admin.AdminClient;
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
        // One prefix for every message: the command as typed (keywarden status, keywarden revoke, …).
        JsonNode answer = send(socket, req, "keywarden " + req.path("op").asText(), "");
        if (!answer.path("ok").asBoolean(false)) {
            throw new UserError("keywarden " + req.path("op").asText() + ": the daemon refused: "
                    + answer.path("error").asText("no reason"));
        }
        return answer;
    }

    /** {@link #send(Path, ObjectNode, String, String)} for a request and answer of flat fields ({@link AdminClient#callFlat}). */
    static java.util.Map<String, String> sendFlat(Path socket, java.util.Map<String, Object> req, String who,
                                                  String otherwise) {
        return call(socket, who, otherwise, () -> AdminClient.callFlat(socket, req));
    }

    /** The daemon's answer, refused or not; {@code who} prefixes errors, {@code otherwise} ends "no socket". */
    static JsonNode send(Path socket, ObjectNode req, String who, String otherwise) {
        return call(socket, who, otherwise, () -> AdminClient.call(socket, req));
    }

    private interface Exchange<T> {
        T run() throws IOException;
    }

    /** One exchange with the daemon, its failures said as a user can act on them. */
    private static <T> T call(Path socket, String who, String otherwise, Exchange<T> exchange) {
        if (!Files.exists(socket)) {
            throw new RuntimeFailure(who + ": no daemon admin socket at " + socket
                    + " (is keywarden running? --admin-socket PATH)" + otherwise);
        }
        try {
            return exchange.run();
        } catch (SocketException e) {
            throw new RuntimeFailure(who + ": cannot reach the daemon at " + socket + ": " + e.getMessage()
                    + (e.getMessage() != null && e.getMessage().contains("ermission") ? " (the admin socket is root's)" : ""));
        } catch (IOException e) {
            throw new RuntimeFailure(who + ": the daemon's answer could not be read: " + e.getMessage());
        }
    }
}
