package io.keywarden.daemon.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class KeyRedactorTest {
    static final String KEY = "sk-dev-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKL";

    static String through(KeyRedactor r, String... chunks) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (String c : chunks) {
            out.writeBytes(r.feed(c.getBytes(StandardCharsets.UTF_8)));
        }
        out.writeBytes(r.end());
        return out.toString(StandardCharsets.UTF_8);
    }

    @Test
    void aKeySplitAtEveryPossiblePlaceIsRedactedAndTheLengthKept() {
        String text = "{\"error\":\"Incorrect API key provided: " + KEY + "\"} and again " + KEY + ".";
        for (int cut = 0; cut <= text.length(); cut++) {
            for (int cut2 = cut; cut2 <= text.length(); cut2 += 7) {
                KeyRedactor r = new KeyRedactor(io.keywarden.delivery.KeyText.of("Bearer ", KEY.getBytes(StandardCharsets.US_ASCII)));
                String out = through(r, text.substring(0, cut), text.substring(cut, cut2), text.substring(cut2));
                assertFalse(out.contains(KEY), out);
                assertFalse(out.contains("abcdefghijklmnop"), out);
                assertEquals(text.length(), out.length(), "same length: a Content-Length stays true");
                assertTrue(out.startsWith("{\"error\":\"Incorrect API key provided: [redacted by keywarden]***"), out);
                assertEquals(2, r.redactions());
            }
        }
    }

    @Test
    void nothingIsHeldBackThatCannotBeginTheKey() {
        KeyRedactor r = new KeyRedactor(io.keywarden.delivery.KeyText.of("Bearer ", KEY.getBytes(StandardCharsets.US_ASCII)));
        assertEquals("data: {\"x\":1}\n\n", new String(r.feed("data: {\"x\":1}\n\n".getBytes(StandardCharsets.UTF_8)),
                StandardCharsets.UTF_8), "an SSE event is passed on whole, at once");
        assertEquals("data: ", new String(r.feed("data: sk-d".getBytes(StandardCharsets.UTF_8)), StandardCharsets.UTF_8),
                "only a possible beginning of the key waits");
        assertEquals("sk-d", new String(r.end(), StandardCharsets.UTF_8));
        assertEquals("Bearer realm=\"x\", key=\"[redacted by keywarden]" + "*".repeat(KEY.length() - 23) + "\"",
                r.redact("Bearer realm=\"x\", key=\"" + KEY + "\""));
    }
}
