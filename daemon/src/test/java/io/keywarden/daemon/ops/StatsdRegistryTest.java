package io.keywarden.daemon.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.core.instrument.Clock;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Tags;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class StatsdRegistryTest {
    private static Meter.Id id() {
        return new Meter.Id("keywarden.tokens", Tags.of("workload", "reviewer", "model", "gpt-4.1|mini"), null, null,
                Meter.Type.COUNTER);
    }

    @Test
    void linesInEachFlavour() throws Exception {
        try (DatagramSocket sink = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            for (var f : StatsdRegistry.Flavor.values()) {
                StatsdRegistry r = new StatsdRegistry("127.0.0.1", sink.getLocalPort(), f, Duration.ofHours(1), Clock.SYSTEM);
                String line = r.line(id(), "", 42, "c");
                r.close();
                switch (f) {
                    case DATADOG -> assertEquals("keywarden.tokens:42|c|#model:gpt-4.1_mini,workload:reviewer", line);
                    case TELEGRAF -> assertEquals("keywarden.tokens,model=gpt-4.1_mini,workload=reviewer:42|c", line);
                    case ETSY -> assertEquals("keywarden.tokens.gpt-4_1_mini.reviewer:42|c", line);
                    default -> throw new AssertionError(f);
                }
            }
        }
    }

    @Test
    void aStepSendsCountersAsDatagrams() throws Exception {
        java.util.regex.Pattern sent = java.util.regex.Pattern.compile(
                "keywarden\\.gateway\\.requests:(\\d+)\\|c\\|#outcome:ok,workload:reviewer");
        try (DatagramSocket sink = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            sink.setSoTimeout(100);
            StatsdRegistry r = new StatsdRegistry("127.0.0.1", sink.getLocalPort(), StatsdRegistry.Flavor.DATADOG,
                    Duration.ofMillis(200), Clock.SYSTEM);
            var counter = r.counter("keywarden.gateway.requests", "workload", "reviewer", "outcome", "ok");
            long count = 0;
            String got = "";
            long end = System.currentTimeMillis() + 10_000;
            // A step's count goes out once, in the datagram of the step after it; a publish that comes
            // a whole step late (a loaded machine) sends 0 for it. So: counted again until a datagram
            // carries a count.
            while (count == 0 && System.currentTimeMillis() < end) {
                counter.increment(3);
                long stepEnd = System.currentTimeMillis() + 600;
                while (count == 0 && System.currentTimeMillis() < stepEnd) {
                    DatagramPacket p = new DatagramPacket(new byte[2048], 2048);
                    try {
                        sink.receive(p);
                    } catch (java.net.SocketTimeoutException quiet) {
                        continue;
                    }
                    String text = new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8);
                    java.util.regex.Matcher m = sent.matcher(text);
                    if (m.find()) {
                        got = text;
                        count = Long.parseLong(m.group(1));
                    }
                }
            }
            r.close();
            assertTrue(count > 0 && count % 3 == 0, "a datagram with the counted requests: " + got);
        }
    }
}
