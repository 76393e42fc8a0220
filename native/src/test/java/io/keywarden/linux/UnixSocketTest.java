package io.keywarden.linux;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.Memory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Frames and a descriptor through a real Unix socket: what the handover of /dev/fuse relies on. */
class UnixSocketTest {
    @TempDir
    Path dir;

    @Test
    void aDescriptorAndAFrameArriveTogetherAndThePeerIsKnown() throws Exception {
        Path sock = dir.resolve("h.sock");
        Path file = dir.resolve("payload");
        Files.writeString(file, "through the descriptor");
        try (UnixSocket server = UnixSocket.listen(sock)) {
            assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(sock)));
            CompletableFuture<UnixSocket.Frame> got = CompletableFuture.supplyAsync(() -> {
                try (UnixSocket c = server.accept()) {
                    io.keywarden.linux.PeerCred p = c.peer();
                    assertEquals(ProcessHandle.current().pid(), p.pid());
                    assertEquals(LibC.getuid(), p.uid());
                    return c.timeout(Duration.ofSeconds(5)).receive(1 << 20);
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            });
            byte[] big = new byte[300_000];
            for (int i = 0; i < big.length; i++) {
                big[i] = (byte) i;
            }
            int fd = LibC.open(file.toString(), LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
            try (UnixSocket c = UnixSocket.connect(sock)) {
                c.send(big, fd);
            } finally {
                LibC.close(fd);
            }
            UnixSocket.Frame f = got.get(10, TimeUnit.SECONDS);
            assertArrayEquals(big, f.data());
            assertTrue(f.fd() >= 0, "the descriptor came along");
            try (Memory m = new Memory(64)) {
                long n = LibC.read(f.fd(), m, 64);
                assertEquals("through the descriptor", new String(m.getByteArray(0, (int) n), StandardCharsets.UTF_8));
            } finally {
                LibC.close(f.fd());
            }
        }
    }

    @Test
    void oversizedFramesAndClosedPeersAreErrorsNotHangs() throws Exception {
        Path sock = dir.resolve("o.sock");
        try (UnixSocket server = UnixSocket.listen(sock)) {
            CompletableFuture<String> got = CompletableFuture.supplyAsync(() -> {
                try (UnixSocket c = server.accept(); UnixSocket d = server.accept()) {
                    IOException big = assertThrows(IOException.class, () -> c.timeout(Duration.ofSeconds(5)).receive(10));
                    IOException eof = assertThrows(IOException.class, () -> d.timeout(Duration.ofSeconds(5)).receive(10));
                    return big.getMessage() + " / " + eof.getMessage();
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            });
            try (UnixSocket c = UnixSocket.connect(sock)) {
                c.send(new byte[11], -1);
            }
            UnixSocket.connect(sock).close();
            String why = got.get(10, TimeUnit.SECONDS);
            assertTrue(why.contains("11 bytes (at most 10)") && why.contains("closed"), why);
        }
        NativeException none = assertThrows(NativeException.class, () -> UnixSocket.connect(dir.resolve("nobody.sock")));
        assertEquals(Errno.ENOENT, none.errno());
    }

    @Test
    void closingWakesAThreadInAccept() throws Exception {
        UnixSocket server = UnixSocket.listen(dir.resolve("a.sock"));
        CompletableFuture<Throwable> waiting = CompletableFuture.supplyAsync(() -> {
            try {
                server.accept().close();
                return null;
            } catch (NativeException e) {
                return e;
            }
        });
        // Close only once a thread is in accept4(2) on it (its /proc task's syscall line names it).
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!inAccept(server.fd())) {
            assertTrue(System.nanoTime() < end, "no thread entered accept4 on fd " + server.fd());
            Thread.onSpinWait();
        }
        server.close();
        assertTrue(waiting.get(5, TimeUnit.SECONDS) instanceof NativeException);
    }

    /** Whether a thread of this process is in accept4 on {@code fd}: x86-64 and aarch64 syscall numbers. */
    static boolean inAccept(int fd) throws IOException {
        String nr = System.getProperty("os.arch").equals("aarch64") ? "242" : "288";
        try (java.util.stream.Stream<Path> tasks = Files.list(Path.of("/proc/self/task"))) {
            for (Path t : tasks.toList()) {
                try {
                    String[] f = Files.readString(t.resolve("syscall")).trim().split(" ");
                    if (f.length > 1 && f[0].equals(nr) && Long.decode(f[1]) == fd) {
                        return true;
                    }
                } catch (IOException e) {
                    // the thread ended
                }
            }
        }
        return false;
    }
}
