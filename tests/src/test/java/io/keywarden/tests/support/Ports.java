package io.keywarden.tests.support;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A loopback port for a daemon a test starts with {@code --listen}.
 *
 * <p>Ports are drawn below the kernel's ephemeral range ({@code ip_local_port_range} starts at 32768),
 * so an outgoing connection or a {@code new ServerSocket(0)} elsewhere in the run cannot take the port
 * between this check and the daemon's bind; and the port is checked bindable before it is handed out.
 * A CI run once failed on "Address already in use" when ports were drawn from 20000–40000.
 */
public final class Ports {
    private static final int LOW = 12_000;
    private static final int HIGH = 32_000;

    private Ports() {
    }

    /** A port on 127.0.0.1 that was free a moment ago and lies outside the ephemeral range. */
    public static int free() {
        for (int attempt = 0; attempt < 200; attempt++) {
            int port = ThreadLocalRandom.current().nextInt(LOW, HIGH);
            try (ServerSocket s = new ServerSocket()) {
                s.setReuseAddress(true);
                s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
                return port;
            } catch (IOException taken) {
                // try another
            }
        }
        throw new IllegalStateException("no free loopback port in " + LOW + "-" + HIGH + " after 200 tries");
    }
}
