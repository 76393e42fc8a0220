package io.keywarden.tests.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.tests.support.Daemon;
import java.util.List;
import java.util.jar.JarFile;
import java.util.zip.ZipEntry;
import org.junit.jupiter.api.Test;

/**
 * The shaded jar carries one Netty (Vert.x's, which gRPC uses too) and one native library of it:
 * the epoll transport (a socket's descriptor through public API; JNA's own library is extracted
 * the same way), for x86-64 and aarch64 — no tcnative, no io_uring, nothing for other systems.
 */
class JarContentsTest {

    @Test
    void oneNettyAndOnlyItsEpollLibrary() throws Exception {
        try (JarFile jar = new JarFile(Daemon.jar().toFile())) {
            List<String> names = jar.stream().map(ZipEntry::getName).toList();
            assertEquals(List.of(), names.stream().filter(n -> n.startsWith("io/grpc/netty/shaded/")).limit(3).toList(),
                    "no shaded second Netty");
            assertEquals(1, names.stream().filter(n -> n.endsWith("io/netty/channel/Channel.class")).count());
            assertTrue(names.contains("io/grpc/netty/NettyChannelBuilder.class"), "gRPC on the unshaded Netty");
            assertTrue(names.contains("io/netty/channel/epoll/EpollDomainSocketChannel.class"), "the epoll transport");
            assertEquals(List.of("META-INF/native/libnetty_transport_native_epoll_aarch_64.so",
                    "META-INF/native/libnetty_transport_native_epoll_x86_64.so"), names.stream().filter(n ->
                    n.startsWith("META-INF/native/") && (n.endsWith(".so") || n.endsWith(".dll") || n.endsWith(".jnilib")))
                    .sorted().toList(), "Netty's epoll library only");
        }
    }
}
