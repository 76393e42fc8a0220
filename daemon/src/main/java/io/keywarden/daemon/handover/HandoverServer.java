package io.keywarden.daemon.handover;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.keywarden.linux.NativeException;
import io.keywarden.linux.UnixSocket;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The running daemon's side of an upgrade ({@code admin.handoverSocket}): a successor started
 * with {@code --takeover} connects, the peer must be root ({@code SO_PEERCRED}: uid 0, and the
 * pid it names must be the one connected), the daemon stops serving and hands over its
 * {@link Inheritance} with the {@code /dev/fuse} descriptor, and exits once the successor says it
 * serves. If the successor fails before that, the daemon serves again from what it kept.
 *
 * <p>Protocol (frames of {@link UnixSocket}): successor → {@code {"op":"takeover","pid":N,"version":V,
 * "formats":[1,2]}} (the {@link Inheritance} formats it reads; none said: format 1, as the builds
 * before formats); daemon → {@code {"ok":true,"format":F}} then the inheritance frame in format F
 * (the newest both know) with the descriptor, or {@code {"refused":"why"}} before anything stopped
 * when they share none; successor → {@code {"ready":true}} once its workers read the device.
 *
 * <p>Not closed: a successor whose "ready" arrives just after {@link #READY_WITHIN} ran out (the
 * old daemon then serves again) would leave two daemons reading one mount. A successor boots in
 * well under a second; a third message would move the window, not remove it.
 */
public final class HandoverServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(HandoverServer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** How long the successor may take from receiving the state to serving. */
    static final Duration READY_WITHIN = Duration.ofSeconds(60);

    /** What the daemon does at each step; implemented by the runtime. */
    public interface Daemon {
        /** Stops serving and returns the state to hand over; throws {@link Refused} when it cannot. */
        Inheritance handOver(long toPid) throws Refused;

        /** The successor serves: exit without unmounting or revoking. */
        void handedOver(long toPid);

        /** The successor failed after this daemon stopped: serve again from {@code kept}. */
        void resume(Inheritance kept, String why);

        /** A connection was refused before anything stopped (recorded in the ledger). */
        void refused(io.keywarden.linux.PeerCred peer, String why);
    }

    /** The daemon cannot hand over now; nothing was stopped. */
    public static final class Refused extends Exception {
        public Refused(String why) {
            super(why);
        }
    }

    private final UnixSocket listener;
    private final Path path;
    private final Daemon daemon;
    private volatile boolean closed;

    private HandoverServer(UnixSocket listener, Path path, Daemon daemon) {
        this.listener = listener;
        this.path = path;
        this.daemon = daemon;
    }

    public static HandoverServer start(Path socket, Daemon daemon) throws IOException {
        HandoverServer s = new HandoverServer(UnixSocket.listen(socket), socket, daemon);
        Warmup.codec();
        Thread t = new Thread(s::serve, "keywarden-handover");
        t.setDaemon(true);
        t.start();
        return s;
    }

    private void serve() {
        while (!closed) {
            UnixSocket c;
            try {
                c = listener.accept();
            } catch (NativeException e) {
                if (!closed) {
                    LOG.warn("handover socket {}: {}", path, e.getMessage());
                }
                return;
            }
            if (handle(c)) {
                return;
            }
        }
    }

    /** True when this daemon handed over (or resumed as a new instance): accept no more. */
    private boolean handle(UnixSocket c) {
        io.keywarden.linux.PeerCred peer = null;
        try (c) {
            peer = c.peer();
            if (peer.uid() != 0) {
                daemon.refused(peer, "uid " + peer.uid() + " is not root");
                return false;
            }
            c.timeout(Duration.ofSeconds(10));
            JsonNode hello = JSON.readTree(c.receive(4096).data());
            if (!"takeover".equals(hello.path("op").asText()) || hello.path("pid").asLong() != peer.pid()) {
                daemon.refused(peer, "not a takeover request from the connected process");
                return false;
            }
            int format = format(hello);
            if (format < 0) {
                String why = "the successor (keywarden " + hello.path("version").asText("?") + ") reads handover formats "
                        + hello.path("formats") + ", none of " + Inheritance.FORMATS + " that this daemon writes; nothing"
                        + " was stopped: stop this daemon and start the new one without --takeover (keys are issued anew)";
                daemon.refused(peer, why);
                send(c, Map.of("refused", why));
                return false;
            }
            Inheritance in;
            try {
                in = daemon.handOver(peer.pid());
            } catch (Refused r) {
                daemon.refused(peer, r.getMessage());
                send(c, Map.of("refused", r.getMessage()));
                return false;
            }
            try {
                send(c, Map.of("ok", true, "format", format));
                if (format < 3 && !in.unrevoked().isEmpty()) {
                    LOG.warn("the successor reads handover format {}, which cannot carry the {} lease(s) whose revoke is"
                            + " still pending ({}): nobody retries them now; their keys live until they expire at the"
                            + " provider", format, in.unrevoked().size(), in.unrevoked().stream()
                            .map(io.keywarden.daemon.lifecycle.Unrevoked.Entry::leaseId).toList());
                }
                byte[] frame = in.encode(format);
                try {
                    c.send(frame, in.fuse().fd());
                } finally {
                    Arrays.fill(frame, (byte) 0);
                }
                c.timeout(READY_WITHIN);
                JsonNode ready = JSON.readTree(c.receive(4096).data());
                if (!ready.path("ready").asBoolean()) {
                    throw new IOException("the successor answered " + ready.path("failed").asText("something else than ready"));
                }
            } catch (IOException | RuntimeException e) {
                daemon.resume(in, "pid " + peer.pid() + " did not take over: " + e.getMessage());
                return true;
            }
            daemon.handedOver(peer.pid());
            return true;
        } catch (IOException | RuntimeException e) {
            LOG.warn("handover request{} failed before anything stopped: {}", peer == null ? "" : " from pid " + peer.pid(),
                    e.getMessage());
            return false;
        }
    }

    /** The newest format both sides know, or -1; a hello that names none reads format 1. */
    static int format(JsonNode hello) {
        java.util.Set<Integer> theirs = new java.util.HashSet<>();
        if (!hello.has("formats")) {
            theirs.add(1);
        }
        for (JsonNode f : hello.path("formats")) {
            if (f.canConvertToInt()) {
                theirs.add(f.asInt());
            }
        }
        return Inheritance.FORMATS.stream().filter(theirs::contains).max(Integer::compare).orElse(-1);
    }

    static void send(UnixSocket c, Map<String, ?> message) throws IOException {
        c.send(JSON.writeValueAsString(message).getBytes(StandardCharsets.UTF_8), -1);
    }

    /** Stops accepting (a connection being handled goes on). */
    @Override
    public void close() {
        closed = true;
        listener.close();
    }
}
