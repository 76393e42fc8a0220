package io.keywarden.linux;

import com.sun.jna.Memory;
import java.nio.charset.StandardCharsets;
import java.util.Optional;

/**
 * Small /proc files read with plain open/read/close into a per-thread buffer: several times
 * cheaper than java.nio for the few hundred bytes KeyFS reads on every open.
 */
public final class ProcFiles {
    private static final int SIZE = 16 * 1024;
    private static final ThreadLocal<Memory> BUFFERS = ThreadLocal.withInitial(() -> new Memory(SIZE));

    private ProcFiles() {
    }

    /** The file's content (up to 16 KiB), or empty when it cannot be opened or read. */
    public static Optional<String> read(String path) {
        int fd = LibC.open(path, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
        if (fd < 0) {
            return Optional.empty();
        }
        try {
            Memory buf = BUFFERS.get();
            long total = 0;
            while (total < SIZE) {
                long n = LibC.read(fd, buf.share(total), SIZE - total);
                if (n < 0) {
                    if (Errno.last() == Errno.EINTR) {
                        continue;
                    }
                    return Optional.empty();
                }
                if (n == 0) {
                    break;
                }
                total += n;
            }
            byte[] b = buf.getByteArray(0, (int) total);
            return Optional.of(new String(b, StandardCharsets.UTF_8));
        } finally {
            LibC.close(fd);
        }
    }

    /** The target of a symbolic link, or empty. */
    public static Optional<String> readlink(String path) {
        Memory buf = BUFFERS.get();
        long n = LibC.readlink(path, buf, SIZE);
        if (n < 0) {
            return Optional.empty();
        }
        return Optional.of(new String(buf.getByteArray(0, (int) n), StandardCharsets.UTF_8));
    }

    /** How many of process {@code pid}'s descriptors are open on {@code file} now (0 when it cannot be read). */
    public static long descriptorsOn(long pid, java.nio.file.Path file) {
        try (var fds = java.nio.file.Files.list(java.nio.file.Path.of("/proc/" + pid + "/fd"))) {
            return fds.filter(fd -> readlink(fd.toString()).map(file.toString()::equals).orElse(false)).count();
        } catch (java.io.IOException e) {
            return 0;
        }
    }
}
