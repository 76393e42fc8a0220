package io.keywarden.daemon.gateway;

/**
 * One accepted connection: the uid that owns its client socket (for the per-uid bounds; -1 for
 * mTLS), requests in progress and the idle timer, and what its caller is pinned to.
 */
final class Conn {
    final int uid;
    /** Over a connection bound: closed, never counted, never served. */
    boolean refused;
    int inFlight;
    long idleTimer = -1;
    volatile long inode = -1;
    PeerLookup.Holder holder;
    io.keywarden.linux.FileIdentity exe;
    /** On the relayed Unix socket: the connection's writer, as the kernel named it; null elsewhere. */
    WriterRelay.Link link;

    Conn(int uid) {
        this.uid = uid;
    }
}
