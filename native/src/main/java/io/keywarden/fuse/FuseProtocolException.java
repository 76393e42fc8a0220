package io.keywarden.fuse;

/** The kernel sent something this implementation cannot decode; answered with EIO. */
public class FuseProtocolException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public FuseProtocolException(String message) {
        super(message);
    }
}
