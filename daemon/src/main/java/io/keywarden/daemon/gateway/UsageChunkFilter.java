package io.keywarden.daemon.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * For a stream whose usage the gateway asked for on the agent's behalf ({@code include_usage}
 * forced on so that the tokens can be counted): passes every server-sent event through whole and
 * drops the one usage-only chunk ({@code "choices": []} with a {@code usage}) the agent did not ask
 * for. Events are passed on as soon as their blank line arrives, so the stream is not delayed;
 * an event longer than {@link #MAX_EVENT} ends the filtering and is passed on as it comes.
 */
final class UsageChunkFilter {
    static final int MAX_EVENT = 1 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
    private boolean off;
    private int dropped;

    /** The complete events of what has arrived so far, minus the usage-only chunk. */
    byte[] feed(byte[] chunk) {
        if (off) {
            return chunk;
        }
        pending.write(chunk, 0, chunk.length);
        byte[] all = pending.toByteArray();
        ByteArrayOutputStream out = new ByteArrayOutputStream(all.length);
        int from = 0;
        for (int i = 0; i < all.length; i++) {
            int end = boundary(all, i);
            if (end > 0) {
                if (!usageOnly(new String(all, from, i - from, StandardCharsets.UTF_8))) {
                    out.write(all, from, end - from);
                } else {
                    dropped++;
                }
                from = end;
                i = end - 1;
            }
        }
        pending.reset();
        if (all.length - from > MAX_EVENT) {
            off = true;
            out.write(all, from, all.length - from);
        } else {
            pending.write(all, from, all.length - from);
        }
        return out.toByteArray();
    }

    /** Whatever is left at the end of the stream (an unterminated event is passed on as it is). */
    byte[] end() {
        byte[] rest = pending.toByteArray();
        pending.reset();
        return rest;
    }

    int dropped() {
        return dropped;
    }

    /** The index just past a blank line starting at {@code i} ("\n\n" or "\r\n\r\n"), or -1. */
    private static int boundary(byte[] b, int i) {
        if (b[i] != '\n') {
            return -1;
        }
        if (i + 1 < b.length && b[i + 1] == '\n') {
            return i + 2;
        }
        if (i + 2 < b.length && b[i + 1] == '\r' && b[i + 2] == '\n') {
            return i + 3;
        }
        return -1;
    }

    private static boolean usageOnly(String event) {
        if (!event.contains("usage") || !event.contains("choices")) {
            return false;
        }
        StringBuilder data = new StringBuilder();
        for (String line : event.split("\r?\n")) {
            if (line.startsWith("data:")) {
                data.append(line.substring(5).trim());
            }
        }
        try {
            JsonNode n = JSON.readTree(data.toString());
            return n != null && n.path("choices").isArray() && n.path("choices").isEmpty() && n.path("usage").isObject();
        } catch (java.io.IOException e) {
            return false;
        }
    }
}
