package io.keywarden.daemon.gateway;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The relay in both of its drivers, in one process: a shard on a Netty epoll event loop (as the
 * gateway runs it) and a shard on a thread of its own (the fallback). A client's bytes reach the
 * internal socket's server whole, with the writer pinned (this process), and the server's answer
 * comes back; closing the relay closes its links. The writer checks against other processes are
 * {@code GatewayAttackIT}'s, with real processes.
 */
class WriterRelayTest {
    private Path dir;
    private ServerSocketChannel server;
    private Thread echo;

    @BeforeEach
    void start() throws IOException {
        assumeTrue(WriterRelay.supported(), "SO_PASSPIDFD (Linux 6.5)");
        dir = Files.createTempDirectory("kw-relay-");
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(dir.resolve("internal.sock")));
        // The internal side: answers each chunk it reads with the same bytes upper-cased.
        echo = new Thread(() -> {
            try {
                while (true) {
                    SocketChannel c = server.accept();
                    Thread t = new Thread(() -> {
                        try (c) {
                            ByteBuffer b = ByteBuffer.allocate(4096);
                            while (c.read(b) > 0) {
                                b.flip();
                                byte[] got = new byte[b.remaining()];
                                b.get(got);
                                c.write(ByteBuffer.wrap(new String(got, StandardCharsets.US_ASCII).toUpperCase()
                                        .getBytes(StandardCharsets.US_ASCII)));
                                b.clear();
                            }
                        } catch (IOException e) {
                            // the relay closed it
                        }
                    });
                    t.setDaemon(true);
                    t.start();
                }
            } catch (IOException e) {
                // closed by the test
            }
        });
        echo.setDaemon(true);
        echo.start();
    }

    @AfterEach
    void stop() throws IOException {
        if (server != null) {
            server.close();
        }
        if (dir != null) {
            try (var files = Files.list(dir)) {
                for (Path f : files.toList()) {
                    Files.deleteIfExists(f);
                }
            }
            Files.deleteIfExists(dir);
        }
    }

    /** Sends {@code text} through the relay at {@code sock} and reads the answer of the same length. */
    private static String roundTrip(Path sock, String text) throws IOException {
        try (SocketChannel c = SocketChannel.open(UnixDomainSocketAddress.of(sock))) {
            c.write(ByteBuffer.wrap(text.getBytes(StandardCharsets.US_ASCII)));
            ByteBuffer in = ByteBuffer.allocate(text.length());
            while (in.hasRemaining() && c.read(in) >= 0) {
                // until the whole answer is in
            }
            return new String(in.array(), 0, in.position(), StandardCharsets.US_ASCII);
        }
    }

    @Test
    void aShardOnANettyEventLoopRelaysBothWays() throws Exception {
        io.netty.channel.MultiThreadIoEventLoopGroup group = new io.netty.channel.MultiThreadIoEventLoopGroup(1,
                io.netty.channel.epoll.EpollIoHandler.newFactory());
        Path sock = dir.resolve("relay.sock");
        try (WriterRelay relay = WriterRelay.listen(sock, () -> { })) {
            io.netty.channel.IoEventLoop loop = (io.netty.channel.IoEventLoop) group.next();
            // Joined from outside the loop here; the gateway joins from the loop's own thread.
            assertNotNull(relay.onLoop(loop, dir.resolve("internal.sock")), "an epoll event loop takes the shard");
            assertEquals("HELLO THROUGH THE LOOP", roundTrip(sock, "hello through the loop"));
            // Written whole before reading: within what the sockets buffer on the way (about 200 KiB each).
            byte[] big = "x".repeat(100_000).getBytes(StandardCharsets.US_ASCII);
            assertArrayEquals("X".repeat(100_000).getBytes(StandardCharsets.US_ASCII),
                    roundTrip(sock, new String(big, StandardCharsets.US_ASCII)).getBytes(StandardCharsets.US_ASCII),
                    "more than a socket buffer, both ways");
            io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10), () -> relay.links() == 0,
                    () -> relay.links() + " links left after the clients closed");
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }

    /** Out of descriptors, a shard stops accepting; on an event loop it tries again a second later, links or not. */
    @Test
    void aShardOnAnEventLoopAcceptsAgainAfterAPause() throws Exception {
        io.netty.channel.MultiThreadIoEventLoopGroup group = new io.netty.channel.MultiThreadIoEventLoopGroup(1,
                io.netty.channel.epoll.EpollIoHandler.newFactory());
        Path sock = dir.resolve("relay.sock");
        java.util.concurrent.ExecutorService client = java.util.concurrent.Executors.newSingleThreadExecutor();
        try (WriterRelay relay = WriterRelay.listen(sock, () -> { })) {
            io.netty.channel.IoEventLoop loop = (io.netty.channel.IoEventLoop) group.next();
            RelayShard shard = relay.onLoop(loop, dir.resolve("internal.sock"));
            loop.submit(() -> {
                shard.pauseAccepting(new io.keywarden.linux.NativeException("accept4", 24));
                return null;
            }).sync();
            // Nothing closes meanwhile: only the retry can take this connection.
            var answer = client.submit(() -> roundTrip(sock, "after the pause"));
            assertEquals("AFTER THE PAUSE", answer.get(20, TimeUnit.SECONDS));
        } finally {
            client.shutdownNow();
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }

    @Test
    void aShardOnAThreadOfItsOwnRelaysBothWays() throws Exception {
        Path sock = dir.resolve("relay.sock");
        try (WriterRelay relay = WriterRelay.start(sock, dir.resolve("internal.sock"), () -> { })) {
            assertEquals("HELLO THROUGH THE THREAD", roundTrip(sock, "hello through the thread"));
            io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10), () -> relay.links() == 0,
                    () -> relay.links() + " links left after the client closed");
        }
    }
}
