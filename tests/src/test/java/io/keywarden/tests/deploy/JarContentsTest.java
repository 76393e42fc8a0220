package io.keywarden.tests.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.tests.support.Daemon;
import java.util.List;
import java.util.jar.JarFile;
import java.util.zip.ZipEntry;
import org.junit.jupiter.api.Test;

/** The shaded jar carries one Netty (Vert.x's, which gRPC uses too) and no native library. */
class JarContentsTest {

    @Test
    void oneNettyAndNoNativeLibraries() throws Exception {
        try (JarFile jar = new JarFile(Daemon.jar().toFile())) {
            List<String> names = jar.stream().map(ZipEntry::getName).toList();
            assertEquals(List.of(), names.stream().filter(n -> n.startsWith("io/grpc/netty/shaded/")).limit(3).toList(),
                    "no shaded second Netty");
            assertEquals(1, names.stream().filter(n -> n.endsWith("io/netty/channel/Channel.class")).count());
            assertTrue(names.contains("io/grpc/netty/NettyChannelBuilder.class"), "gRPC on the unshaded Netty");
            assertTrue(names.contains("io/netty/channel/socket/nio/NioDomainSocketChannel.class"),
                    "AF_UNIX through the JDK: no epoll library needed");
            assertEquals(List.of(), names.stream().filter(n -> n.startsWith("META-INF/native/")
                    && (n.endsWith(".so") || n.endsWith(".dll") || n.endsWith(".jnilib"))).toList(), "no Netty native library");
        }
    }
}
