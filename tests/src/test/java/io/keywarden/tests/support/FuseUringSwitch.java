package io.keywarden.tests.support;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The kernel's FUSE io_uring switch ({@code /sys/module/fuse/parameters/enable_uring}) for a
 * benchmark: {@code -Dbench.ioUring=on|off} sets it for the run and puts it back on close; unset,
 * it is left as the machine has it.
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
        try {
            String before = Files.readString(PARAM).trim();
            Files.writeString(PARAM, want.equals("on") ? "Y" : "N");
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
