package io.keywarden.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class ParsingTest {

    @ParameterizedTest
    @CsvSource({"90s,90", "15m,900", "1h,3600", "1h30m,5400", "PT15M,900", "2d,172800", "0s,0", "1m30s,90"})
    void durations(String text, long seconds) {
        assertEquals(Duration.ofSeconds(seconds), Durations.parse(text));
    }

    @Test
    void millis() {
        assertEquals(Duration.ofMillis(250), Durations.parse("250ms"));
        assertEquals("1h30m", Durations.format(Duration.ofSeconds(5400)));
        assertEquals("250ms", Durations.format(Duration.ofMillis(250)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", " ", "15", "m15", "1.5h", "-5m", "15 m", "1h-30m", "PT", "P-1D", "15min", "1w"})
    void badDurations(String text) {
        assertThrows(IllegalArgumentException.class, () -> Durations.parse(text));
    }

    @ParameterizedTest
    @CsvSource({"unix:uid:1001,UNIX_UID,1001", "unix:gid:0,UNIX_GID,0", "unix:path:/usr/bin/python3,UNIX_PATH,/usr/bin/python3",
        "k8s:pod-uid:0f3c2a1e-1111-2222-3333-444455556666,K8S_POD_UID,0f3c2a1e-1111-2222-3333-444455556666",
        "container:id:0123456789abcdef,CONTAINER_ID,0123456789abcdef"})
    void selectors(String text, Selector.Kind kind, String value) {
        Selector s = Selector.parse(text);
        assertEquals(kind, s.kind());
        assertEquals(value, s.value());
        assertEquals(text, s.toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"unix:uid:", "unix:uid:-1", "unix:uid:4294967295", "unix:uid:1e3", "unix:path:rel/x",
        "unix:sha256:xyz", "k8s:pod-uid:abc", "container:id:XYZ", "docker:id:abc", "uid:1001", ""})
    void badSelectors(String text) {
        assertThrows(IllegalArgumentException.class, () -> Selector.parse(text));
    }

    @Test
    void spiffeIds() {
        SpiffeId id = SpiffeId.parse("spiffe://example.org/ns/agents/sa/reviewer");
        assertEquals("example.org", id.trustDomain());
        assertEquals("/ns/agents/sa/reviewer", id.path());
        assertEquals("spiffe://example.org", SpiffeId.parse("spiffe://example.org").toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"spiffe://", "spiffe://ex ample.org/a", "spiffe://example.org//a", "spiffe://example.org/a?b",
        "spiffe://example.org:8080/a", "SPIFFE://example.org/a", "spiffe://example.org/./a", "spiffe://user@example.org/a"})
    void badSpiffeIds(String text) {
        assertThrows(IllegalArgumentException.class, () -> SpiffeId.parse(text));
    }
}
