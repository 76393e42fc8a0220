package io.keywarden.linux;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafePathsTest {
    @TempDir
    Path tmp;

    @Test
    void aPrivateDirectoryIsMadeWithItsModeWhateverTheUmask() throws Exception {
        Path d = SafePaths.directory(tmp.resolve("a/b/c"), SafePaths.PRIVATE, "test");
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(d)));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(d.getParent())));
        Path shared = SafePaths.directory(tmp.resolve("s"), SafePaths.SHARED, "test");
        assertEquals("rwxr-xr-x", PosixFilePermissions.toString(Files.getPosixFilePermissions(shared)));
    }

    @Test
    void aDirectoryOthersCanWriteIsRefusedWithItsPath() throws Exception {
        Path open = Files.createDirectory(tmp.resolve("open"));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxrwxrwx"));
        SafePaths.UnsafePathException e = assertThrows(SafePaths.UnsafePathException.class,
                () -> SafePaths.check(open, "the ledger"));
        assertTrue(e.getMessage().contains(open.toString()) && e.getMessage().contains("writable by others"), e.getMessage());
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwxrwx---"));
        assertTrue(assertThrows(SafePaths.UnsafePathException.class, () -> SafePaths.check(open, "x")).getMessage()
                .contains("its group"));
    }

    @Test
    void aStickyAncestorIsFineButNotAsTheDirectoryItself() throws Exception {
        Path sticky = Files.createDirectory(tmp.resolve("sticky"));
        Files.setPosixFilePermissions(sticky, PosixFilePermissions.fromString("rwxrwxrwx"));
        new ProcessBuilder("chmod", "1777", sticky.toString()).start().waitFor();
        Path mine = Files.createDirectory(sticky.resolve("mine"));
        SafePaths.check(mine, "test");
        assertThrows(SafePaths.UnsafePathException.class, () -> SafePaths.check(sticky, "test"));
    }

    @Test
    void aDirectoryOwnedByAnotherUserOrALinkOfTheirsIsRefused() throws Exception {
        assumeTrue(LibC.geteuid() == 0, "needs root to chown");
        Path theirs = Files.createDirectory(tmp.resolve("theirs"));
        new ProcessBuilder("chown", "1002:1002", theirs.toString()).start().waitFor();
        assertTrue(assertThrows(SafePaths.UnsafePathException.class, () -> SafePaths.check(theirs, "t")).getMessage()
                .contains("owned by uid 1002"));
        Path target = Files.createDirectory(tmp.resolve("target"));
        Path link = tmp.resolve("link");
        new ProcessBuilder("ln", "-s", target.toString(), link.toString()).start().waitFor();
        new ProcessBuilder("chown", "-h", "1002:1002", link.toString()).start().waitFor();
        assertTrue(assertThrows(SafePaths.UnsafePathException.class, () -> SafePaths.check(link, "t")).getMessage()
                .contains("symbolic link owned by uid 1002"));
    }

    @Test
    void aSocketGetsItsModeBeforeItsNameAndReplacesAStaleOne() throws Exception {
        Path sock = tmp.resolve("x.sock");
        Files.writeString(sock, "stale");
        SafePaths.placeSocket(sock, PosixFilePermissions.fromString("rw-rw-rw-"), "test", at -> {
            assertTrue(at.getParent().getFileName().toString().startsWith(".kw-sock-"), at.toString());
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(at.getParent())));
            Files.writeString(at, "bound");
        });
        assertEquals("bound", Files.readString(sock));
        assertEquals("rw-rw-rw-", PosixFilePermissions.toString(Files.getPosixFilePermissions(sock)));
        try (var s = Files.list(tmp)) {
            assertEquals(1, s.count(), "no private directory left behind");
        }
    }
}
