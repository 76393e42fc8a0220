package io.keywarden.tests.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The kernel's FUSE io_uring switch ({@code /sys/module/fuse/parameters/enable_uring}), set for a
 * test or a benchmark and put back on close: {@link #on} for a test (skipped on a kernel without
 * it), {@link #fromProperty} for a benchmark ({@code -Dbench.ioUring=on|off}; unset, it is left as
 * the machine has it).
 */
public final class FuseUringSwitch implements AutoCloseable {
    static final Path PARAM = Path.of("/sys/module/fuse/parameters/enable_uring");
    private final String before;

    private FuseUringSwitch(String before) {
        this.before = before;
    }

    public static FuseUringSwitch fromProperty() {
        String want = System.getProperty("bench.ioUring", "");
        if (want.isEmpty() || !Files.isWritable(PARAM)) {
            return new FuseUringSwitch(null);
        }
        return to(want.equals("on"));
    }

    /** Turns it on for a test; the test is skipped where the kernel has no FUSE io_uring. */
    public static FuseUringSwitch on() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isWritable(PARAM), "this kernel has no FUSE io_uring (" + PARAM + ")");
        return to(true);
    }

    private static FuseUringSwitch to(boolean on) {
        try {
            String before = Files.readString(PARAM).trim();
            Files.writeString(PARAM, on ? "Y" : "N");
            return new FuseUringSwitch(before);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void close() {
        if (before != null) {
            try {
                Files.writeString(PARAM, before);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
