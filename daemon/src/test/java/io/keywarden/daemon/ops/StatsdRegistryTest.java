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
        try (DatagramSocket sink = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            sink.setSoTimeout(5000);
            StatsdRegistry r = new StatsdRegistry("127.0.0.1", sink.getLocalPort(), StatsdRegistry.Flavor.DATADOG,
                    Duration.ofMillis(200), Clock.SYSTEM);
            r.counter("keywarden.gateway.requests", "workload", "reviewer", "outcome", "ok").increment(3);
            String got = "";
            long end = System.currentTimeMillis() + 5000;
            while (!got.contains("keywarden.gateway.requests:3|c") && System.currentTimeMillis() < end) {
                DatagramPacket p = new DatagramPacket(new byte[2048], 2048);
                sink.receive(p);
                got = new String(p.getData(), 0, p.getLength(), StandardCharsets.UTF_8);
            }
            r.close();
            assertTrue(got.contains("keywarden.gateway.requests:3|c|#outcome:ok,workload:reviewer"), got);
        }
    }
}
