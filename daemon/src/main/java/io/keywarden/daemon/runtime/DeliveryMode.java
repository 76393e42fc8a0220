package io.keywarden.daemon.runtime;

/** How keys are delivered as files: the KeyFS FUSE file system, or plain tmpfs files. */
public enum DeliveryMode { FUSE, TMPFS }
