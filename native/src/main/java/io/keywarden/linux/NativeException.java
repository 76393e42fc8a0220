package io.keywarden.linux;

/** A libc call failed; carries the call and errno. */
public class NativeException extends java.io.IOException {
    private static final long serialVersionUID = 1L;
    private final int errno;

    public NativeException(String call, int errno) {
        super(call + " failed: " + Errno.name(errno));
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }
}
