package io.keywarden.delivery;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/** A lease's header text: one object for every request, never printed, wiped with the lease. */
class KeyTextTest {
    static final String KEY = "sk-test-" + "k".repeat(40);

    @Test
    void oneTextPerLeaseWipedWithItAndNeverPrinted() {
        IssuedKey issued = new IssuedKey(KEY.getBytes(StandardCharsets.US_ASCII), Instant.now().plusSeconds(60), "lease-1");
        KeyText t = issued.headerText("Bearer ");
        assertSame(t, issued.headerText("Bearer "), "every request gets the same text");
        StringBuilder seen = new StringBuilder();
        for (int i = 0; i < t.length(); i++) {
            seen.append(t.charAt(i));
        }
        assertEquals("Bearer " + KEY, seen.toString());
        assertEquals(KEY.length(), t.keyLength());
        assertEquals((byte) 's', t.keyByte(0));
        assertFalse(t.toString().contains(KEY), t.toString());
        assertTrue(t.toString().startsWith("credential sha256:"), t.toString());
        assertThrows(UnsupportedOperationException.class, () -> t.subSequence(0, 3));
        CharSequence view = t.view(b -> new String(b, StandardCharsets.US_ASCII).subSequence(0, 0));
        assertSame(view, t.view(b -> "another"), "the view is made once");
        issued.destroy();
        for (int i = 0; i < t.length(); i++) {
            assertEquals(0, t.charAt(i), "wiped with the lease");
        }
    }
}
