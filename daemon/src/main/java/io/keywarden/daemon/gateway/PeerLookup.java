package io.keywarden.daemon.gateway;

import io.keywarden.delivery.Caller;
import io.keywarden.linux.LibC;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Which process is on the other end of a gateway connection.
 *
 * <ul>
 * <li>Unix socket: {@code SO_PEERCRED} on the accepted socket (pid, uid and gid of the process that
 * called {@code connect()}), from the kernel, nothing to race.</li>
 * <li>Loopback TCP: the peer socket is the one whose local address is the connection's remote
 * address and whose remote address is ours; the kernel's {@code sock_diag} netlink lookup (or,
 * failing that, {@code /proc/net/tcp} and {@code tcp6}) gives its inode and owner uid, and the
 * processes holding {@code socket:[inode]} among their descriptors are the
 * callers. Every holder is returned: a socket shared by
 * several processes (inherited over fork, passed over SCM_RIGHTS) is decided for all of them.</li>
 * </ul>
 * Both read only what the kernel reports; a process cannot claim another's connection. Blocking
 * (reads /proc): never called on an event loop.
 */
public final class PeerLookup {
    private final Path proc;
    private final boolean sockDiag;

    /** Reads {@code proc}'s tables only (tests, other roots). */
    public PeerLookup(Path proc) {
        this(proc, false);
    }

    PeerLookup(Path proc, boolean sockDiag) {
        this.proc = proc;
        this.sockDiag = sockDiag;
    }

    public static PeerLookup system() {
        return new PeerLookup(Path.of("/proc"), true);
    }

    /** The peer of the connected Unix socket {@code fd}; empty when the kernel does not say. */
    public static Optional<Caller> unixPeer(int fd) {
        return io.keywarden.linux.PeerCred.find(fd).map(p -> new Caller(p.pid(), p.uid(), p.gid()));
    }

    /**
     * A process that holds a socket: its pid and start time (the pair a reused pid never repeats),
     * its real uid and gid.
     */
    public record Holder(int pid, long startTime, int uid, int gid) {
        public Caller caller() {
            return new Caller(pid, uid, gid);
        }
    }

    /**
     * The inode of the client's end of the Unix connection whose server end is our descriptor
     * {@code fd}: our end's inode from {@code /proc/self/fd}, its peer from the kernel's
     * {@code unix_diag}. Empty when either cannot be read.
     */
    public static java.util.OptionalLong unixPeerInode(int fd) {
        Optional<String> link = io.keywarden.linux.ProcFiles.readlink("/proc/self/fd/" + fd);
        if (link.isEmpty() || !link.get().startsWith("socket:[") || !link.get().endsWith("]")) {
            return java.util.OptionalLong.empty();
        }
        try {
            long ours = Long.parseLong(link.get().substring(8, link.get().length() - 1));
            return SockDiag.unixPeer(ours);
        } catch (NumberFormatException e) {
            return java.util.OptionalLong.empty();
        }
    }

    /**
     * The uid that owns the client's end of a loopback TCP connection, by {@code sock_diag}'s exact
     * lookup only (microseconds: it runs on the event loop for every new connection; the slow
     * /proc/net/tcp walk is never done there). Empty when the kernel does not say.
     */
    public Optional<Integer> tcpOwner(InetSocketAddress client, InetSocketAddress server) {
        return sockDiag ? SockDiag.find(client, server).map(TcpEntry::uid) : Optional.empty();
    }

    /** The inode of the client's end of a loopback TCP connection (see {@link #tcpPeers}). */
    public java.util.OptionalLong tcpInode(InetSocketAddress client, InetSocketAddress server) throws IOException {
        Optional<TcpEntry> e = findTcp(client, server);
        return e.isPresent() ? java.util.OptionalLong.of(e.get().inode()) : java.util.OptionalLong.empty();
    }

    /**
     * Every process that holds {@code socket:[inode]} right now, each with its start time: read after
     * the descriptor was seen, the descriptor seen again after it and the start time unchanged after
     * that (so a pid that exited and was reused during the look is not reported as the holder). One pass over every /proc/PID/fd: the price of
     * knowing that nobody else holds the socket.
     */
    public List<Holder> holdersOf(long inode) {
        return confirmed(io.keywarden.linux.FdScan.socketHolders(proc.toString(), new long[] {inode})[0], inode);
    }

    /** A request waiting for the next pass over every descriptor. */
    private record Waiter(long inode, java.util.concurrent.CompletableFuture<List<Holder>> done) {
    }

    private final Object passes = new Object();
    private List<Waiter> nextPass = new ArrayList<>();
    private boolean passing;

    /**
     * {@link #holdersOf}, with every request that arrives while a pass is under way answered by
     * the next pass, together: a pass costs the walk over every descriptor on the node whatever
     * the number of sockets it looks for, so concurrent gateway requests share it instead of each
     * paying it. A request is only ever answered by a pass that started after it arrived. The
     * passes run on {@code blocking}, one at a time.
     */
    public java.util.concurrent.CompletableFuture<List<Holder>> holdersOfAsync(long inode,
                                                                              java.util.concurrent.Executor blocking) {
        java.util.concurrent.CompletableFuture<List<Holder>> f = new java.util.concurrent.CompletableFuture<>();
        boolean start;
        synchronized (passes) {
            nextPass.add(new Waiter(inode, f));
            start = !passing;
            passing = true;
        }
        if (start) {
            try {
                blocking.execute(this::passes);
            } catch (java.util.concurrent.RejectedExecutionException e) {
                List<Waiter> dropped;
                synchronized (passes) {
                    passing = false;
                    dropped = nextPass;
                    nextPass = new ArrayList<>();
                }
                dropped.forEach(w -> w.done().completeExceptionally(e));
            }
        }
        return f;
    }

    private void passes() {
        while (true) {
            List<Waiter> batch;
            synchronized (passes) {
                if (nextPass.isEmpty()) {
                    passing = false;
                    return;
                }
                batch = nextPass;
                nextPass = new ArrayList<>();
            }
            try {
                long[] inodes = new long[batch.size()];
                for (int i = 0; i < inodes.length; i++) {
                    inodes[i] = batch.get(i).inode();
                }
                int[][] pids = io.keywarden.linux.FdScan.socketHolders(proc.toString(), inodes);
                for (int i = 0; i < inodes.length; i++) {
                    batch.get(i).done().complete(confirmed(pids[i], inodes[i]));
                }
            } catch (RuntimeException e) {
                batch.forEach(w -> w.done().completeExceptionally(e));
            }
        }
    }

    /**
     * The pids a pass saw holding {@code socket:[inode]}, each read again the careful way: its start
     * time, then uid and gid, then the descriptor seen again, then the start time unchanged (so a
     * pid that exited and was reused during the look is not reported as the holder).
     */
    private List<Holder> confirmed(int[] pids, long inode) {
        String target = "socket:[" + inode + "]";
        String root = proc.toString();
        List<Holder> out = new ArrayList<>(2);
        for (int pid : pids) {
            String name = Integer.toString(pid);
            String fdDir = root + "/" + name + "/fd";
            try {
                long start = io.keywarden.attestation.ProcAttestor.startTimeOf(root, pid);
                Path dir = proc.resolve(name);
                Optional<Integer> uid = uidOf(dir);
                Optional<Integer> gid = gid(dir);
                if (uid.isPresent() && gid.isPresent() && holdsFd(fdDir, target)
                        && io.keywarden.attestation.ProcAttestor.startTimeOf(root, pid) == start) {
                    out.add(new Holder(pid, start, uid.get(), gid.get()));
                }
            } catch (io.keywarden.attestation.ProcessGoneException gone) {
                // exited meanwhile: not a holder
            }
        }
        return out;
    }

    private static boolean holdsFd(String fdDir, String target) {
        String[] fds = new java.io.File(fdDir).list();
        if (fds == null) {
            return false;
        }
        for (String fd : fds) {
            Optional<String> link = io.keywarden.linux.ProcFiles.readlink(fdDir + "/" + fd);
            if (link.isPresent() && link.get().equals(target)) {
                return true;
            }
        }
        return false;
    }

    /** A TCP socket as /proc/net/tcp lists it. */
    record TcpEntry(long inode, int uid) {
    }

    /**
     * The processes holding the client end of the loopback TCP connection from {@code client} to
     * {@code server} (as this daemon sees it: {@code client} is its remote address).
     */
    public List<Caller> tcpPeers(InetSocketAddress client, InetSocketAddress server) throws IOException {
        Optional<TcpEntry> e = findTcp(client, server);
        if (e.isEmpty()) {
            return List.of();
        }
        return holders(e.get().inode(), e.get().uid());
    }

    Optional<TcpEntry> findTcp(InetSocketAddress client, InetSocketAddress server) throws IOException {
        if (sockDiag) {
            // The client's socket: its local end is the connection's remote address. The kernel's
            // exact lookup first; the /proc tables (slow: a walk of the whole hash table) if it fails.
            Optional<TcpEntry> exact = SockDiag.find(client, server);
            if (exact.isPresent()) {
                return exact;
            }
        }
        String local = hex(client);
        String remote = hex(server);
        for (String table : new String[] {"net/tcp", "net/tcp6"}) {
            Path f = proc.resolve(table);
            if (!Files.isReadable(f)) {
                continue;
            }
            List<String> lines = Files.readAllLines(f);
            for (int i = 1; i < lines.size(); i++) {
                String[] col = lines.get(i).trim().split("\\s+");
                if (col.length < 10) {
                    continue;
                }
                if (col[1].equalsIgnoreCase(table.endsWith("6") ? v6(local) : local)
                        && col[2].equalsIgnoreCase(table.endsWith("6") ? v6(remote) : remote)) {
                    long inode = Long.parseLong(col[9]);
                    if (inode != 0) {
                        return Optional.of(new TcpEntry(inode, Integer.parseUnsignedInt(col[7])));
                    }
                }
            }
        }
        return Optional.empty();
    }

    /**
     * Every process with {@code socket:[inode]} open: one pass over /proc/PID/fd (the cost of a new
     * TCP connection; keep-alive connections pay it once, the Unix socket never). {@code uid} is the
     * socket's owner, used when a holder's status cannot be read.
     */
    List<Caller> holders(long inode, int uid) throws IOException {
        String target = "socket:[" + inode + "]";
        List<Caller> out = new ArrayList<>();
        try (DirectoryStream<Path> pids = Files.newDirectoryStream(proc, p -> isPid(p.getFileName().toString()))) {
            for (Path p : pids) {
                if (holds(p, target)) {
                    int pid = Integer.parseInt(p.getFileName().toString());
                    gid(p).ifPresent(g -> out.add(new Caller(pid, uidOf(p).orElse(uid), g)));
                }
            }
        }
        return out;
    }

    private static boolean holds(Path pidDir, String target) {
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(pidDir.resolve("fd"))) {
            for (Path fd : fds) {
                try {
                    if (target.equals(Files.readSymbolicLink(fd).toString())) {
                        return true;
                    }
                } catch (IOException | RuntimeException closed) {
                    // closed meanwhile
                }
            }
        } catch (IOException | RuntimeException gone) {
            // exited, or not ours to read
        }
        return false;
    }

    private static Optional<Integer> gid(Path pidDir) {
        return statusField(pidDir, "Gid:");
    }

    private static Optional<Integer> uidOf(Path pidDir) {
        return statusField(pidDir, "Uid:");
    }

    /** The real id of a {@code Uid:}/{@code Gid:} line of /proc/PID/status. */
    private static Optional<Integer> statusField(Path pidDir, String field) {
        try {
            for (String line : Files.readAllLines(pidDir.resolve("status"))) {
                if (line.startsWith(field)) {
                    return Optional.of(Integer.parseUnsignedInt(line.substring(field.length()).trim().split("\\s+")[0]));
                }
            }
        } catch (IOException | RuntimeException gone) {
            // exited
        }
        return Optional.empty();
    }

    private static boolean isPid(String s) {
        if (s.isEmpty() || s.length() > 10) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) < '0' || s.charAt(i) > '9') {
                return false;
            }
        }
        return true;
    }

    /** /proc/net/tcp's form of an IPv4 address: the 32-bit word in host (little-endian) order, then the port. */
    static String hex(InetSocketAddress a) {
        InetAddress ip = a.getAddress();
        byte[] b = ip.getAddress();
        if (b.length == 16 && ip instanceof java.net.Inet6Address && isV4Mapped(b)) {
            b = java.util.Arrays.copyOfRange(b, 12, 16);
        }
        StringBuilder s = new StringBuilder();
        if (b.length == 4) {
            s.append(word(b, 0));
        } else {
            for (int w = 0; w < 4; w++) {
                s.append(word(b, w * 4));
            }
        }
        return s.append(':').append(String.format("%04X", a.getPort())).toString();
    }

    /** The tcp6 form of an address given in the IPv4 form (v4-mapped), or unchanged. */
    private static String v6(String v4OrV6) {
        int colon = v4OrV6.indexOf(':');
        if (colon == 8) {
            return "0000000000000000FFFF0000" + v4OrV6;
        }
        return v4OrV6;
    }

    private static boolean isV4Mapped(byte[] b) {
        for (int i = 0; i < 10; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return b[10] == (byte) 0xff && b[11] == (byte) 0xff;
    }

    private static String word(byte[] b, int at) {
        return String.format("%02X%02X%02X%02X", b[at + 3], b[at + 2], b[at + 1], b[at]);
    }

    static boolean isLoopback(InetSocketAddress a) {
        return a.getAddress() != null && (a.getAddress().isLoopbackAddress()
                || a.getAddress() instanceof Inet4Address && a.getAddress().getAddress()[0] == 127);
    }
}
