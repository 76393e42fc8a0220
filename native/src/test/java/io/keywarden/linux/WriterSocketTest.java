package io.keywarden.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The kernel's per-message writer, on real sockets: each chunk names the process that wrote it, two
 * writers' bytes are never joined in one read, and descriptors a writer passes are closed here.
 */
@org.junit.jupiter.api.Timeout(60)
class WriterSocketTest {
    @TempDir
    Path dir;

    private record Chunk(String text, int pid, int uid, int pidfd, boolean fds) {
    }

    /** Every chunk until the writer's end closes (after {@code writer} exited, so that all of it is queued). */
    private static List<Chunk> drain(int fd) throws Exception {
        List<Chunk> out = new ArrayList<>();
        try (WriterSocket.Receiver r = new WriterSocket.Receiver(4096); Epoll ep = new Epoll(4)) {
            ep.add(fd, Epoll.IN, 1);
            while (true) {
                long n = r.receive(fd);
                if (n == WriterSocket.AGAIN) {
                    awaitReady(ep, "no data within 10 s");
                    continue;
                }
                if (n == 0) {
                    return out;
                }
                out.add(new Chunk(r.data().getString(0, "US-ASCII").substring(0, (int) n), r.pid(), r.uid(), r.pidfd(),
                        r.descriptorsSent()));
            }
        }
    }

    /** Waits up to 10 s for an event; await answers 0 early when a signal interrupts it (EINTR): waited again. */
    private static void awaitReady(Epoll ep, String otherwise) throws Exception {
        long end = System.nanoTime() + 10_000_000_000L;
        int ready = 0;
        while (ready == 0 && System.nanoTime() < end) {
            ready = ep.await((int) Math.max(1, (end - System.nanoTime()) / 1_000_000));
        }
        assertTrue(ready > 0, otherwise);
    }

    private static int acceptWithin(int listening) throws Exception {
        try (Epoll ep = new Epoll(1)) {
            ep.add(listening, Epoll.IN, 0);
            awaitReady(ep, "no connection within 10 s");
        }
        int c = WriterSocket.accept(listening);
        assertTrue(c >= 0);
        return c;
    }

    @Test
    void eachChunkNamesItsWriterWithAPidfdAndNoLaterProcessCanInheritIt() throws Exception {
        assumeTrue(WriterSocket.supported(), "SO_PASSPIDFD needs Linux 6.5");
        Path sock = dir.resolve("w.sock");
        int l = WriterSocket.listen(sock, 8);
        int client = WriterSocket.connect(sock);
        int server = acceptWithin(l);
        try {
            byte[] hello = "hello".getBytes(StandardCharsets.US_ASCII);
            try (com.sun.jna.Memory m = new com.sun.jna.Memory(hello.length)) {
                m.write(0, hello, 0, hello.length);
                assertEquals(hello.length, WriterSocket.send(client, m, hello.length));
            }
            LibC.shutdown(client, 1);
            List<Chunk> got = drain(server);
            assertEquals(1, got.size());
            Chunk c = got.get(0);
            assertEquals("hello", c.text());
            assertEquals(ProcessHandle.current().pid(), c.pid());
            assertEquals(LibC.getuid(), c.uid());
            assertTrue(c.pidfd() >= 0, "a pidfd of the writer came with the chunk: " + c.pidfd());
            assertTrue(Pidfd.alive(c.pidfd()));
            LibC.close(c.pidfd());
            assertTrue(WriterSocket.inode(server) > 0);
            assertNotEquals(WriterSocket.inode(server), WriterSocket.inode(client));
        } finally {
            LibC.close(client);
            LibC.close(server);
            LibC.close(l);
        }
    }

    @Test
    void twoWritersBytesAreNeverJoinedAndPassedDescriptorsAreClosed() throws Exception {
        assumeTrue(WriterSocket.supported(), "SO_PASSPIDFD needs Linux 6.5");
        Path sock = dir.resolve("w.sock");
        int l = WriterSocket.listen(sock, 8);
        // One connection written by a process, its forked child, the process again, then one
        // message carrying a descriptor: all queued before anything is read.
        String script = """
                import os, socket, sys
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(sys.argv[1])
                s.sendall(b"one")
                child = os.fork()
                if child == 0:
                    s.sendall(b"two")
                    os._exit(0)
                os.waitpid(child, 0)
                s.sendall(b"three")
                # Descriptors of a file of its own, not its stdout: a pipe in flight would keep the test's read of it open.
                socket.send_fds(s, [b"four"], [os.open(sys.argv[2], os.O_RDONLY) for _ in range(3)])
                print(os.getpid(), child, flush=True)
                s.shutdown(socket.SHUT_WR)
                """;
        Path marker = Files.writeString(dir.resolve("passed-marker"), "x");
        Process p = new ProcessBuilder("python3", "-c", script, sock.toString(), marker.toString()).redirectErrorStream(true)
                .start();
        int server = acceptWithin(l);
        try {
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
            String[] pids = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim().split(" ");
            int parent = Integer.parseInt(pids[0]);
            int child = Integer.parseInt(pids[1]);
            List<Chunk> got = drain(server);
            // A writer's consecutive messages may come as one chunk ("three" and "four" do, here); two writers' never.
            assertEquals("one", got.get(0).text());
            assertEquals(parent, got.get(0).pid());
            assertEquals("two", got.get(1).text());
            assertEquals(child, got.get(1).pid());
            List<Chunk> rest = got.subList(2, got.size());
            assertEquals("threefour", rest.stream().map(Chunk::text).reduce("", String::concat));
            assertTrue(rest.stream().allMatch(c -> c.pid() == parent));
            assertFalse(got.get(0).fds() || got.get(1).fds());
            assertTrue(rest.get(rest.size() - 1).fds(), "the last chunk came with descriptors");
            for (Chunk c : got) {
                // The writers have exited (and been reaped): whatever the kernel gives, it names no live process.
                if (c.pidfd() >= 0) {
                    assertFalse(Pidfd.alive(c.pidfd()));
                    LibC.close(c.pidfd());
                }
            }
            assertEquals(0, ProcFiles.descriptorsOn(ProcessHandle.current().pid(), marker),
                    "the three passed descriptors were closed");
        } finally {
            p.destroyForcibly();
            LibC.close(server);
            LibC.close(l);
        }
    }
}
