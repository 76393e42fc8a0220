package io.keywarden.daemon.gateway;

import io.netty.channel.Channel;
import io.netty.channel.nio.AbstractNioChannel;
import java.lang.reflect.Method;
import java.nio.channels.SelectableChannel;
import java.util.OptionalInt;

/**
 * The file descriptor under a Netty NIO channel, for the one socket option the JDK does not expose:
 * the peer's pid of a Unix socket ({@code SO_PEERCRED}; the JDK's own option gives the user and
 * group only). Reads Netty's {@code javaChannel()} and the JDK's {@code SelChImpl.getFDVal()}; the
 * jar's manifest exports {@code java.base/sun.nio.ch} for it ({@code Add-Exports}). Empty when the
 * JVM does not allow it, and the gateway then refuses the connection: it never guesses a caller.
 */
final class ChannelFd {
    private static final Method JAVA_CHANNEL;
    private static final Method FD_VAL;

    static {
        Method jc = null;
        Method fd = null;
        try {
            jc = AbstractNioChannel.class.getDeclaredMethod("javaChannel");
            jc.setAccessible(true);
            fd = Class.forName("sun.nio.ch.SelChImpl").getMethod("getFDVal");
        } catch (ReflectiveOperationException | RuntimeException e) {
            jc = null;
        }
        JAVA_CHANNEL = jc;
        FD_VAL = fd;
    }

    private ChannelFd() {
    }

    static OptionalInt of(Channel ch) {
        if (JAVA_CHANNEL == null || !(ch instanceof AbstractNioChannel)) {
            return OptionalInt.empty();
        }
        try {
            SelectableChannel sc = (SelectableChannel) JAVA_CHANNEL.invoke(ch);
            return OptionalInt.of((int) FD_VAL.invoke(sc));
        } catch (ReflectiveOperationException | RuntimeException e) {
            return OptionalInt.empty();
        }
    }

    /** Why {@link #of} cannot work in this JVM, or null when it can. */
    static String unsupported() {
        if (JAVA_CHANNEL == null) {
            return "this JVM does not expose socket descriptors (run the jar, or add"
                    + " --add-exports java.base/sun.nio.ch=ALL-UNNAMED)";
        }
        return null;
    }
}
