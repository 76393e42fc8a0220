package io.keywarden.daemon.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ForwardPathTest {
    @Test
    void ordinaryPathsPassAndAreNormalisedOnce() throws Exception {
        assertEquals("v1/chat/completions", ForwardPath.normalise("v1/chat/completions"));
        assertEquals("v1/files/file-abc", ForwardPath.normalise("v1/files/file%2Dabc"), "decoded once, re-encoded");
        assertEquals("v1/files/a%20b", ForwardPath.normalise("v1/files/a%20b"), "a decoded space is encoded again");
        assertEquals("openai/deployments/gpt-4o/chat/completions",
                ForwardPath.normalise("openai/deployments/gpt-4o/chat/completions"));
        assertEquals("v1/models/", ForwardPath.normalise("v1/models/"), "a trailing slash stays");
        assertEquals("v1/caf%C3%A9", ForwardPath.normalise("v1/caf%c3%a9"), "valid UTF-8 passes, encoded");
        assertEquals("", ForwardPath.normalise(""));
    }

    @Test
    void everyWayOfSpellingDotSegmentsOrParametersIsRefused() {
        for (String p : new String[] {"v1/../admin", "v1/./x", "..", "v1/..%2fadmin", "v1/%2e%2e/admin", "v1/%2E./x",
            "v1/.%2e/x", "v1/%252e%252e/admin", "v1/..;/admin", "v1/x;a=b", "v1/%c0%ae%c0%ae/admin", "v1/%e0%80%ae",
            "v1/..%5cadmin", "v1\\..\\admin", "v1//x", "v1/%00", "v1/a b", "v1/a|b", "v1/{x}", "v1/\"x\"", "v1/%zz",
            "v1/%2", "v1/%2f", "v1/%7f", "v1/é"}) {
            assertThrows(ForwardPath.Refused.class, () -> ForwardPath.normalise(p), p);
        }
    }

    @Test
    void queriesAndHeadersAreCheckedForWhatAUriOrAHeaderCannotHold() throws Exception {
        ForwardPath.checkQuery("api-version=2024-10-21&x=%20");
        ForwardPath.checkQuery(null);
        assertThrows(ForwardPath.Refused.class, () -> ForwardPath.checkQuery("a=b c"));
        assertThrows(ForwardPath.Refused.class, () -> ForwardPath.checkQuery("a=%g1"));
        assertTrue(ForwardPath.validHeader("x-request-id", "abc\tdef"));
        assertFalse(ForwardPath.validHeader("x-bad", "a\r\nInjected: yes"));
        assertFalse(ForwardPath.validHeader("x-bad", "a\u0000"));
        assertFalse(ForwardPath.validHeader("bad name", "v"));
        assertFalse(ForwardPath.validHeader(":path", "v"));
        assertTrue(ForwardPath.validMethod("POST"));
        assertFalse(ForwardPath.validMethod("PO ST"));
    }

    /**
     * The short way (a path already in normal form is returned as it is) agrees with the long way on
     * every path of a small alphabet holding each character class that matters: a path it takes is
     * one the long way accepts unchanged, and every other goes the long way.
     */
    @Test
    void theShortWayAgreesWithDecodingAndEncodingOnEveryPathItTakes() throws Exception {
        char[] alphabet = {'a', '.', '/', '%', '2', 'e', ';', '-', '~', ' ', '\\', ':', '@', '!'};
        java.util.Random random = new java.util.Random(25);
        int taken = 0;
        for (int n = 0; n < 200_000; n++) {
            char[] p = new char[1 + random.nextInt(8)];
            for (int i = 0; i < p.length; i++) {
                p[i] = alphabet[random.nextInt(alphabet.length)];
            }
            String raw = new String(p);
            String slow;
            try {
                slow = ForwardPath.decodeAndEncode(raw);
            } catch (ForwardPath.Refused e) {
                slow = null;
            }
            if (ForwardPath.plain(raw)) {
                taken++;
                assertEquals(raw, slow, "the short way took '" + raw + "'");
            }
            try {
                assertEquals(slow, ForwardPath.normalise(raw), raw);
            } catch (ForwardPath.Refused e) {
                assertEquals(null, slow, raw);
            }
        }
        assertTrue(taken > 1000, "the short way was taken " + taken + " times");
    }
}
