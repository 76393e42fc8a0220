package io.keywarden.daemon.audit;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The files of one ledger: rotated segments {@code FILE.1 … FILE.N} (oldest first), then {@code FILE}. */
public final class LedgerFiles {
    private LedgerFiles() {
    }

    /**
     * {@code FILE.head}: the last record's seq and hash, so that cutting records off the end shows.
     * Here rather than on {@link Ledger}, whose logger would start logging on a CLI call that only reads.
     */
    public static Path headFileOf(Path file) {
        return file.resolveSibling(file.getFileName() + ".head");
    }

    static List<Path> segments(Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        String base = file.getFileName().toString();
        Pattern p = Pattern.compile(Pattern.quote(base) + "\\.(\\d+)");
        List<Path> rotated = new ArrayList<>();
        if (Files.isDirectory(dir)) {
            try (var s = Files.list(dir)) {
                s.filter(f -> p.matcher(f.getFileName().toString()).matches()).forEach(rotated::add);
            }
        }
        rotated.sort(Comparator.comparingLong(LedgerFiles::number));
        if (Files.exists(file)) {
            rotated.add(file.toAbsolutePath());
        }
        return rotated;
    }

    static long number(Path seg) {
        Matcher m = Pattern.compile(".*\\.(\\d+)$").matcher(seg.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : Long.MAX_VALUE;
    }

    static long lastSegmentNumber(Path file) throws IOException {
        long n = 0;
        for (Path s : segments(file)) {
            if (!s.equals(file.toAbsolutePath())) {
                n = Math.max(n, number(s));
            }
        }
        return n;
    }
}
