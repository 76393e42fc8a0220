package io.keywarden.daemon.gateway;

import io.keywarden.linux.LibC;
import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;

/**
 * One exact TCP socket lookup through the kernel's {@code sock_diag} netlink interface
 * ({@code SOCK_DIAG_BY_FAMILY} with a full 4-tuple, not a dump): the socket's owner uid and inode
 * in a few microseconds, where reading {@code /proc/net/tcp} walks the kernel's whole hash table
 * (measured here: ~4 ms per table). Struct layouts from {@code linux/inet_diag.h} and
 * {@code linux/netlink.h}; multi-byte fields in host order except ports and addresses (network
 * order).
 */
final class SockDiag {
    private static final short SOCK_DIAG_BY_FAMILY = 20;
    private static final short NLMSG_ERROR = 2;
    private static final short NLM_F_REQUEST = 1;
    private static final byte IPPROTO_TCP = 6;
    private static final byte AF_INET = 2;
    private static final byte AF_INET6 = 10;
    /** nlmsghdr (16) + inet_diag_req_v2 (56). */
    static final int REQUEST_LENGTH = 72;

    private SockDiag() {
    }

    /** The socket whose local end is {@code local} and remote end {@code remote}: {uid, inode}; empty when none. */
    static Optional<PeerLookup.TcpEntry> find(InetSocketAddress local, InetSocketAddress remote) {
        boolean v4 = local.getAddress() instanceof Inet4Address && remote.getAddress() instanceof Inet4Address;
        byte[] req = request(local, remote, v4);
        int fd = LibC.socket(LibC.AF_NETLINK, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, LibC.NETLINK_SOCK_DIAG);
        if (fd < 0) {
            return Optional.empty();
        }
        try {
            if (LibC.send(fd, req, req.length, 0) != req.length) {
                return Optional.empty();
            }
            byte[] buf = new byte[8192];
            long n = LibC.recv(fd, buf, buf.length, 0);
            return parse(buf, (int) n);
        } finally {
            LibC.close(fd);
        }
    }

    static byte[] request(InetSocketAddress local, InetSocketAddress remote, boolean v4) {
        ByteBuffer b = ByteBuffer.allocate(REQUEST_LENGTH).order(ByteOrder.nativeOrder());
        b.putInt(REQUEST_LENGTH).putShort(SOCK_DIAG_BY_FAMILY).putShort(NLM_F_REQUEST).putInt(1).putInt(0);
        b.put(v4 ? AF_INET : AF_INET6).put(IPPROTO_TCP).put((byte) 0).put((byte) 0);
        b.putInt(0xffffffff);                                 // every TCP state
        b.order(ByteOrder.BIG_ENDIAN).putShort((short) local.getPort()).putShort((short) remote.getPort());
        b.put(address(local, v4)).put(address(remote, v4));
        b.order(ByteOrder.nativeOrder()).putInt(0);           // any interface
        b.putInt(0xffffffff).putInt(0xffffffff);              // INET_DIAG_NOCOOKIE
        return b.array();
    }

    /** 16 bytes: an IPv4 address in the first 4, or the IPv6 one (v4-mapped when the socket is IPv6). */
    private static byte[] address(InetSocketAddress a, boolean v4) {
        byte[] raw = a.getAddress().getAddress();
        byte[] out = new byte[16];
        if (v4) {
            System.arraycopy(raw, 0, out, 0, 4);
        } else if (raw.length == 4) {
            out[10] = (byte) 0xff;
            out[11] = (byte) 0xff;
            System.arraycopy(raw, 0, out, 12, 4);
        } else {
            System.arraycopy(raw, 0, out, 0, 16);
        }
        return out;
    }

    private static final byte AF_UNIX = 1;
    private static final int UDIAG_SHOW_PEER = 0x4;
    private static final short UNIX_DIAG_PEER = 2;
    /** nlmsghdr (16) + unix_diag_req (24). */
    static final int UNIX_REQUEST_LENGTH = 40;

    /**
     * The inode of the socket at the other end of the Unix socket {@code inode}, by the kernel's exact
     * {@code unix_diag} lookup with {@code UDIAG_SHOW_PEER}; empty when the kernel does not say (no
     * {@code unix_diag}, or the socket is gone). Layouts from {@code linux/unix_diag.h}.
     */
    static java.util.OptionalLong unixPeer(long inode) {
        ByteBuffer b = ByteBuffer.allocate(UNIX_REQUEST_LENGTH).order(ByteOrder.nativeOrder());
        b.putInt(UNIX_REQUEST_LENGTH).putShort(SOCK_DIAG_BY_FAMILY).putShort(NLM_F_REQUEST).putInt(1).putInt(0);
        b.put(AF_UNIX).put((byte) 0).putShort((short) 0);
        b.putInt(0xffffffff);                                 // every state
        b.putInt((int) inode);
        b.putInt(UDIAG_SHOW_PEER);
        b.putInt(0xffffffff).putInt(0xffffffff);              // no cookie
        byte[] req = b.array();
        int fd = LibC.socket(LibC.AF_NETLINK, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, LibC.NETLINK_SOCK_DIAG);
        if (fd < 0) {
            return java.util.OptionalLong.empty();
        }
        try {
            if (LibC.send(fd, req, req.length, 0) != req.length) {
                return java.util.OptionalLong.empty();
            }
            byte[] buf = new byte[8192];
            long n = LibC.recv(fd, buf, buf.length, 0);
            return parseUnixPeer(buf, (int) n, inode);
        } finally {
            LibC.close(fd);
        }
    }

    /** unix_diag_msg (16 bytes) after the netlink header, then attributes: UNIX_DIAG_PEER's u32. */
    static java.util.OptionalLong parseUnixPeer(byte[] buf, int n, long inode) {
        if (n < 32) {
            return java.util.OptionalLong.empty();
        }
        ByteBuffer b = ByteBuffer.wrap(buf, 0, n).order(ByteOrder.nativeOrder());
        int len = Math.min(b.getInt(0), n);
        short type = b.getShort(4);
        if (type != SOCK_DIAG_BY_FAMILY || len < 32 || Integer.toUnsignedLong(b.getInt(16 + 4)) != inode) {
            return java.util.OptionalLong.empty();
        }
        int at = 32;
        while (at + 4 <= len) {
            int alen = Short.toUnsignedInt(b.getShort(at));
            int atype = Short.toUnsignedInt(b.getShort(at + 2)) & 0x3fff;
            if (alen < 4 || at + alen > len) {
                break;
            }
            if (atype == UNIX_DIAG_PEER && alen >= 8) {
                long peer = Integer.toUnsignedLong(b.getInt(at + 4));
                return peer == 0 ? java.util.OptionalLong.empty() : java.util.OptionalLong.of(peer);
            }
            at += (alen + 3) & ~3;
        }
        return java.util.OptionalLong.empty();
    }

    /** inet_diag_msg after the netlink header: uid at 16+64, inode at 16+68. */
    static Optional<PeerLookup.TcpEntry> parse(byte[] buf, int n) {
        if (n < 16) {
            return Optional.empty();
        }
        ByteBuffer b = ByteBuffer.wrap(buf, 0, n).order(ByteOrder.nativeOrder());
        int len = b.getInt(0);
        short type = b.getShort(4);
        if (type == NLMSG_ERROR || type != SOCK_DIAG_BY_FAMILY || len < 16 + 72 || n < 16 + 72) {
            return Optional.empty();
        }
        int uid = b.getInt(16 + 64);
        long inode = Integer.toUnsignedLong(b.getInt(16 + 68));
        return inode == 0 ? Optional.empty() : Optional.of(new PeerLookup.TcpEntry(inode, uid));
    }
}
