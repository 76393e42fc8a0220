package io.keywarden.daemon.net;

import io.keywarden.linux.PeerCred;
import io.netty.channel.Channel;
import io.netty.channel.unix.UnixChannel;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.internal.net.NetSocketInternal;
import io.vertx.core.net.NetSocket;
import io.vertx.core.net.impl.ConnectionBase;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * The socket under a Vert.x connection, on Netty's native (epoll) transport: its descriptor
 * ({@link UnixChannel#fd()}, public API), for what the JDK's channels do not expose — the peer's pid
 * of a Unix socket ({@link PeerCred}; the JDK's own option gives the user and group only) and the
 * socket's inode ({@code unix_diag}). No reflection: on the JDK's NIO transport there is no
 * descriptor to read, and the gateway's and the admin API's Unix sockets then refuse to start or
 * name the caller "unknown" — they never guess a caller.
 */
public final class ChannelFd {
    private ChannelFd() {
    }

    /** Vert.x options for the daemon's one Vert.x: the native transport, when this machine has it. */
    public static VertxOptions options(int eventLoops, int workers) {
        return new VertxOptions().setEventLoopPoolSize(eventLoops).setWorkerPoolSize(workers)
                .setPreferNativeTransport(true);
    }

    /** The descriptor under {@code ch}; empty on a transport without one (the JDK's NIO). */
    public static OptionalInt of(Channel ch) {
        return ch instanceof UnixChannel u && u.fd().isOpen() ? OptionalInt.of(u.fd().intValue()) : OptionalInt.empty();
    }

    /** The descriptor of an HTTP connection's socket (Vert.x's connection is a {@code ConnectionBase} on every transport). */
    public static OptionalInt of(HttpConnection c) {
        return c instanceof ConnectionBase b ? of(b.channel()) : OptionalInt.empty();
    }

    /** The peer of a Unix-socket connection; empty when the transport has no descriptor or the kernel does not say. */
    public static Optional<PeerCred> peer(NetSocket so) {
        if (!(so instanceof NetSocketInternal s)) {
            return Optional.empty();
        }
        OptionalInt fd = of(s.channelHandlerContext().channel());
        return fd.isPresent() ? PeerCred.find(fd.getAsInt()) : Optional.empty();
    }

    /** Why {@link #of} cannot work on {@code vertx}'s transport, or null when it can. */
    public static String unsupported(Vertx vertx) {
        if (vertx.isNativeTransportEnabled()) {
            return null;
        }
        Throwable why = vertx.unavailableNativeTransportCause();
        return "Netty's native epoll transport is not available here (" + (why == null ? "not asked for" : why.toString())
                + "): without it a socket's descriptor, and so its caller, cannot be read";
    }
}
