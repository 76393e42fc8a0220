package io.keywarden.daemon.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.delivery.Caller;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class PeerLookupTest {
    @Test
    void addressesAreWrittenAsProcNetTcpWritesThem() throws Exception {
        assertEquals("0100007F:1F90", PeerLookup.hex(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 8080)));
        assertEquals("00000000000000000000000001000000:0050",
                PeerLookup.hex(new InetSocketAddress(InetAddress.getByName("::1"), 80)));
        assertEquals("0100007F:0050", PeerLookup.hex(new InetSocketAddress(InetAddress.getByName("::ffff:127.0.0.1"), 80)),
                "a v4-mapped address is looked up in its IPv4 form (and in tcp6's mapped form)");
    }

    @Test
    void findsThisProcessAsThePeerOfItsOwnLoopbackConnection() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
             Socket client = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            List<Caller> peers = PeerLookup.system().tcpPeers((InetSocketAddress) accepted.getRemoteSocketAddress(),
                    (InetSocketAddress) accepted.getLocalSocketAddress());
            assertEquals(1, peers.size(), peers.toString());
            assertEquals(ProcessHandle.current().pid(), peers.get(0).tid());
            assertTrue(PeerLookup.system().tcpPeers(new InetSocketAddress(InetAddress.getLoopbackAddress(), 1),
                    (InetSocketAddress) accepted.getLocalSocketAddress()).isEmpty(), "no such connection: nobody");
        }
    }

    @Test
    void aMissingProcTableIsNobodyNotAnError() throws Exception {
        PeerLookup none = new PeerLookup(Path.of("/nonexistent-proc"));
        assertTrue(none.tcpPeers(new InetSocketAddress(InetAddress.getLoopbackAddress(), 5),
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 6)).isEmpty());
    }

    @Test
    void sockDiagFindsTheSameSocketAsTheProcTablesMuchFaster() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
             Socket client = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort());
             Socket accepted = server.accept()) {
            InetSocketAddress remote = (InetSocketAddress) accepted.getRemoteSocketAddress();
            InetSocketAddress local = (InetSocketAddress) accepted.getLocalSocketAddress();
            var fromTables = new PeerLookup(Path.of("/proc"), false).findTcp(remote, local).orElseThrow();
            var fromNetlink = SockDiag.find(remote, local).orElseThrow();
            assertEquals(fromTables, fromNetlink, "the same inode and owner");
            assertEquals(0, fromNetlink.uid());
            assertTrue(SockDiag.find(new InetSocketAddress(InetAddress.getLoopbackAddress(), 1), local).isEmpty(),
                    "no such socket: nothing");
        }
    }

    /** A socket inherited over fork is held by both processes; the scan finds each, and only them. */
    @Test
    void everyProcessHoldingASocketIsFoundAndNoOther() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.isExecutable(Path.of("/usr/bin/python3")));
        Process p = new ProcessBuilder("/usr/bin/python3", "-c", """
                import os, socket, sys, time
                a, b = socket.socketpair()
                pid = os.fork()
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                print(os.fstat(a.fileno()).st_ino, pid, flush=True)
                sys.stdin.readline()
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                print("reaped", flush=True)
                sys.stdin.readline()
                """).start();
        try (var out = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream()));
             var in = new java.io.PrintWriter(p.getOutputStream(), true)) {
            String[] first = out.readLine().split(" ");
            long inode = Long.parseLong(first[0]);
            long child = Long.parseLong(first[1]);
            List<Long> holders = PeerLookup.system().holdersOf(inode).stream().map(h -> (long) h.pid()).sorted().toList();
            assertEquals(java.util.stream.Stream.of(p.pid(), child).sorted().toList(), holders);
            assertTrue(PeerLookup.system().holdersOf(inode).stream().allMatch(h -> h.startTime() > 0));
            in.println();
            assertEquals("reaped", out.readLine());
            assertEquals(List.of(p.pid()), PeerLookup.system().holdersOf(inode).stream().map(h -> (long) h.pid()).toList());
            assertEquals(List.of(), PeerLookup.system().holdersOf(inode + 1_000_000_000L), "nobody holds another inode");
            in.println();
        } finally {
            p.destroyForcibly();
            p.waitFor();
        }
    }

    /**
     * Requests that arrive while a pass is pending or under way share the next pass: three sockets
     * asked for, one pass run, each answered with its own holders (and a socket nobody holds, none).
     */
    @Test
    void concurrentRequestsShareOnePassEachWithItsOwnAnswer() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(java.nio.file.Files.isExecutable(Path.of("/usr/bin/python3")));
        Process p = new ProcessBuilder("/usr/bin/python3", "-c", """
                import os, socket, sys
                a, b = socket.socketpair()
                c, d = socket.socketpair()
                print(os.fstat(a.fileno()).st_ino, os.fstat(c.fileno()).st_ino, flush=True)
                sys.stdin.readline()
                """).start();
        try (var out = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream()));
             var in = new java.io.PrintWriter(p.getOutputStream(), true)) {
            String[] inodes = out.readLine().split(" ");
            PeerLookup peers = PeerLookup.system();
            java.util.List<Runnable> tasks = new java.util.ArrayList<>();
            java.util.concurrent.Executor held = tasks::add;   // runs nothing until the test says so
            var first = peers.holdersOfAsync(Long.parseLong(inodes[0]), held);
            var second = peers.holdersOfAsync(Long.parseLong(inodes[1]), held);
            var nobody = peers.holdersOfAsync(Long.parseLong(inodes[0]) + 1_000_000_000L, held);
            assertEquals(1, tasks.size(), "one pass for the three");
            assertTrue(!first.isDone() && !second.isDone() && !nobody.isDone(), "answered only by a pass");
            tasks.get(0).run();
            assertEquals(List.of(p.pid()), first.get().stream().map(h -> (long) h.pid()).toList());
            assertEquals(List.of(p.pid()), second.get().stream().map(h -> (long) h.pid()).toList());
            assertEquals(List.of(), nobody.get());
            // The next request starts a pass of its own.
            var again = peers.holdersOfAsync(Long.parseLong(inodes[1]), held);
            assertEquals(2, tasks.size());
            tasks.get(1).run();
            assertEquals(List.of(p.pid()), again.get().stream().map(h -> (long) h.pid()).toList());
            in.println();
        } finally {
            p.destroyForcibly();
            p.waitFor();
        }
    }
}
