package io.keywarden.linux;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/** Reads the mount table (/proc/self/mountinfo) and mounts or detaches file systems. */
public final class Mounts {

    /** One mount: where, and its file system type. */
    public record Mount(Path mountPoint, String fsType, String source) {
    }

    private Mounts() {
    }

    public static List<Mount> list() throws IOException {
        return Files.readAllLines(Path.of("/proc/self/mountinfo")).stream().map(Mounts::parse).toList();
    }

    /** The mount exactly at {@code path}, if any (the topmost when stacked). */
    public static Optional<Mount> at(Path path) throws IOException {
        Path p = path.toAbsolutePath().normalize();
        Mount found = null;
        for (Mount m : list()) {
            if (m.mountPoint().equals(p)) {
                found = m;
            }
        }
        return Optional.ofNullable(found);
    }

    /** The mount that holds {@code path} (longest mount point prefix). */
    public static Mount containing(Path path) throws IOException {
        Path p = path.toAbsolutePath().normalize();
        Mount best = null;
        for (Mount m : list()) {
            if (p.startsWith(m.mountPoint())
                    && (best == null || m.mountPoint().getNameCount() >= best.mountPoint().getNameCount())) {
                best = m;
            }
        }
        if (best == null) {
            throw new IOException("no mount holds " + p);
        }
        return best;
    }

    static Mount parse(String line) {
        // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
        String[] f = line.split(" ");
        int dash = 6;
        while (dash < f.length && !f[dash].equals("-")) {
            dash++;
        }
        String fsType = dash + 1 < f.length ? f[dash + 1] : "";
        String source = dash + 2 < f.length ? f[dash + 2] : "";
        return new Mount(Path.of(unescape(f[4])), fsType, unescape(source));
    }

    /** mountinfo escapes space, tab, newline and backslash as octal. */
    static String unescape(String s) {
        if (s.indexOf('\\') < 0) {
            return s;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                try {
                    b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                    i += 3;
                    continue;
                } catch (NumberFormatException e) {
                    // not an escape: keep the backslash
                }
            }
            b.append(c);
        }
        return b.toString();
    }

    public static void mount(String source, Path target, String fsType, long flags, String data) throws NativeException {
        if (LibC.mount(source, target.toString(), fsType, flags, data) != 0) {
            throw new NativeException("mount(" + target + ", " + fsType + ")", Errno.last());
        }
    }

    /** Lazily detaches whatever is mounted at {@code target}. */
    public static void detach(Path target) throws NativeException {
        if (LibC.umount2(target.toString(), LibC.MNT_DETACH) != 0) {
            throw new NativeException("umount2(" + target + ")", Errno.last());
        }
    }
}
