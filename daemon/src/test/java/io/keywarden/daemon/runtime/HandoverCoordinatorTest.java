package io.keywarden.daemon.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.daemon.handover.HandoverServer;
import io.keywarden.daemon.handover.Inheritance;
import io.keywarden.daemon.ops.Readiness;
import io.keywarden.issuer.ForwardingIssuer;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.issuer.dev.DevIssuer;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The takeover's side in the old daemon, and the one-stop-wins rule it shares with shutdown. */
class HandoverCoordinatorTest {
    private final RunState run = new RunState();
    private final Components components = new Components(new Readiness());
    private final AtomicInteger stops = new AtomicInteger();
    private final HandoverCoordinator handover = new HandoverCoordinator(run, components, Path.of("/run/keywarden"));

    HandoverCoordinatorTest() {
        components.add("counted", stops::incrementAndGet);
    }

    @Test
    void aDaemonServingTmpfsRefusesBeforeStoppingAnything() {
        handover.serving(null, null, null, null);
        HandoverServer.Refused r = assertThrows(HandoverServer.Refused.class, () -> handover.handOver(42));
        assertTrue(r.getMessage().contains("tmpfs"), r.getMessage());
        assertEquals(0, stops.get(), "nothing stopped");
        assertFalse(run.stopping(), "still serving");
        assertEquals(null, handover.handing());
    }

    @Test
    void aStoppingDaemonRefusesAndNeverMarksItselfHandingOver() {
        assertTrue(run.beginStop("shutdown"));
        HandoverServer.Refused r = assertThrows(HandoverServer.Refused.class, () -> handover.handOver(42));
        assertTrue(r.getMessage().contains("stopping"), r.getMessage());
        assertEquals(null, handover.handing(), "the stop in progress unmounts and revokes as a shutdown does");
        assertEquals("shutdown", run.reason());
    }

    @Test
    void oneStopWinsAndItsReasonStays() {
        assertTrue(run.beginStop("mount lost: gone"));
        assertFalse(run.beginStop("handing over to pid 7"));
        assertFalse(run.beginStop(null));
        assertEquals("mount lost: gone", run.reason());
    }

    @Test
    void theSuccessorsWordReleasesTheWaiter() throws Exception {
        handover.handedOver(99);
        run.awaitStopped();
        assertEquals(99, handover.handedOverTo().getAsLong());
        assertEquals(0, run.exitCode());
        assertTrue(handover.resumeWith().isEmpty());
    }

    @Test
    void aFailedSuccessorLeavesWhatToServeAgainFrom() throws Exception {
        Inheritance kept = new Inheritance(1, "v", Path.of("/run/keywarden"), null, null, List.of(), Map.of(), List.of());
        handover.resume(kept, "the successor died");
        run.awaitStopped();
        assertSame(kept, handover.resumeWith().orElseThrow());
        assertTrue(handover.handedOverTo().isEmpty());
    }

    @Test
    void issuerStateIsAdoptedByNameAndWipedWhateverHappens() throws Exception {
        byte[] mine = {1, 2, 3};
        byte[] unknown = {4, 5};
        byte[][] seen = new byte[1][];
        ForwardingIssuer adopting = new ForwardingIssuer(new DevIssuer("bao", Duration.ofMinutes(5), Clock.systemUTC())) {
            @Override
            public void adoptHandoverState(byte[] state) {
                seen[0] = state.clone();
            }
        };
        Map<String, byte[]> state = new HashMap<>(Map.of("bao", mine, "gone", unknown));
        HandoverCoordinator.adoptIssuerState(new Inheritance(1, "v", Path.of("/m"), null, null, List.of(), state, List.of()),
                IssuerRegistry.single(adopting));
        assertArrayEquals(new byte[] {1, 2, 3}, seen[0], "the instance of the same name takes it");
        assertArrayEquals(new byte[3], mine, "wiped after use");
        assertArrayEquals(new byte[2], unknown, "wiped when no instance takes it");

        byte[] bad = {9};
        ForwardingIssuer refusing = new ForwardingIssuer(new DevIssuer("bao", Duration.ofMinutes(5), Clock.systemUTC())) {
            @Override
            public void adoptHandoverState(byte[] s) throws IssuerException {
                throw new IssuerException("the tokens are not this build's", IssuerException.Kind.CONFIG);
            }
        };
        IOException e = assertThrows(IOException.class, () -> HandoverCoordinator.adoptIssuerState(new Inheritance(1, "v",
                Path.of("/m"), null, null, List.of(), new HashMap<>(Map.of("bao", bad)), List.of()),
                IssuerRegistry.single(refusing)));
        assertEquals("the tokens are not this build's", e.getMessage());
        assertTrue(e.getCause() instanceof IssuerException, "the cause is kept");
        assertArrayEquals(new byte[1], bad, "wiped when refused");
    }
}
