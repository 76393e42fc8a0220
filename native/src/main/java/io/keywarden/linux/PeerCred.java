package io.keywarden.linux;

import java.util.Optional;

/**
 * The process at the other end of a connected Unix socket, as the kernel recorded it when the
 * connection was made ({@code SO_PEERCRED}): its pid, uid and gid. The one place that reads it,
 * for every socket keywarden serves (the admin API, the gateway, the handover socket): callers hand
 * in the descriptor, from {@link UnixSocket} or from Netty's {@code UnixChannel.fd()}.
 */
public record PeerCred(int pid, int uid, int gid) {

    /** The peer of the connected Unix socket {@code fd}; throws when the kernel does not say (not a Unix socket). */
    public static PeerCred of(int fd) throws NativeException {
        int[] cred = new int[3];
        int[] len = {12};
        if (LibC.getsockopt(fd, LibC.SOL_SOCKET, LibC.SO_PEERCRED, cred, len) != 0) {
            throw new NativeException("getsockopt(SO_PEERCRED)", Errno.last());
        }
        if (len[0] != 12) {
            throw new NativeException("getsockopt(SO_PEERCRED) answered " + len[0] + " bytes, not a struct ucred", Errno.EINVAL);
        }
        return new PeerCred(cred[0], cred[1], cred[2]);
    }

    /** The peer of {@code fd}, or empty when the kernel does not say or names no process (pid 0: a socketpair's peer gone). */
    public static Optional<PeerCred> find(int fd) {
        try {
            PeerCred p = of(fd);
            return p.pid() > 0 ? Optional.of(p) : Optional.empty();
        } catch (NativeException e) {
            return Optional.empty();
        }
    }
}
