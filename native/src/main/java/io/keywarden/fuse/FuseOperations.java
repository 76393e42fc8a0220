package io.keywarden.fuse;

import io.keywarden.linux.Errno;

/**
 * A file system's answers to kernel requests. Everything answers ENOSYS unless implemented; each
 * method must answer its {@link FuseReply} exactly once, now or later, from any thread. An
 * exception thrown here is answered with EIO by the session, never kills a worker.
 */
public interface FuseOperations {

    default void lookup(FuseRequest req, long parent, String name, FuseReply reply) {
        reply.error(Errno.ENOSYS);
    }

    /** The kernel dropped {@code nlookup} references to {@code node}. No reply. */
    default void forget(long node, long nlookup) {
    }

    default void getattr(FuseRequest req, long node, FuseReply reply) {
        reply.error(Errno.ENOSYS);
    }

    default void open(FuseRequest req, long node, int flags, FuseReply reply) {
        reply.error(Errno.ENOSYS);
    }

    default void read(FuseRequest req, long node, long fh, long offset, int size, FuseReply reply) {
        reply.error(Errno.ENOSYS);
    }

    default void flush(FuseRequest req, long node, long fh, FuseReply reply) {
        reply.error(Errno.ENOSYS);
    }

    default void release(FuseRequest req, long node, long fh, FuseReply reply) {
        reply.ok();
    }

    default void opendir(FuseRequest req, long node, int flags, FuseReply reply) {
        reply.error(Errno.ENOSYS);
    }

    default void readdir(FuseRequest req, long node, long fh, long offset, int size, FuseReply reply) {
        reply.error(Errno.ENOSYS);
    }

    default void releasedir(FuseRequest req, long node, long fh, FuseReply reply) {
        reply.ok();
    }

    /** access(2) and chdir without {@code default_permissions}: {@code mask} of R_OK 4, W_OK 2, X_OK 1. */
    default void access(FuseRequest req, long node, int mask, FuseReply reply) {
        reply.error(Errno.ENOSYS);
    }

    default void statfs(FuseRequest req, long node, FuseReply reply) {
        reply.statfs(0, 255);
    }
}
