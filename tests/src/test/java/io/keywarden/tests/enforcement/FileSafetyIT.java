package io.keywarden.tests.enforcement;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Every file and socket the daemon creates, tried with links planted by another user (uid 1002)
 * in a sticky world-writable directory, as under /tmp: the daemon refuses to start, naming the
 * directory, and no victim file (root's, mode 0600) changes in content, mode or time. In a
 * directory only root can write, it starts and gives every socket its mode before it is reachable.
 */
class FileSafetyIT {
    Path root;
    Path shared;
    Path victims;

    @BeforeEach
    void setUp() throws Exception {
        Requirements.rootAndFuse();
        root = Files.createTempDirectory("kw-filesafety-");
        Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwxr-xr-x"));
        shared = root.resolve("shared");
        Files.createDirectory(shared);
        Proc.run("chmod", "1777", shared.toString());
        victims = root.resolve("victims");
        Files.createDirectory(victims, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }

    @AfterEach
    void tearDown() throws Exception {
        if (root != null) {
            for (String m : new String[] {"shared/mnt", "safe/mnt"}) {
                Path p = root.resolve(m);
                if (Mounts.at(p).isPresent()) {
                    Mounts.detach(p);
                }
            }
            Proc.run("rm", "-rf", root.toString());
        }
    }

    /** What identifies a victim file's state: content, mode, size, modification time. */
    static String state(Path f) throws Exception {
        return Files.readString(f) + "|" + Files.getAttribute(f, "unix:mode") + "|" + Files.size(f) + "|"
                + Files.getLastModifiedTime(f, LinkOption.NOFOLLOW_LINKS).toMillis();
    }

    @Test
    void linksPlantedByAnotherUserInAStickyDirectoryChangeNothing() throws Exception {
        String[] names = {".mnt.keywarden-lock", "audit.jsonl", "audit.jsonl.head", ".audit.jsonl.keywarden-lock",
            "blocks.json", "blocks.json.tmp", "guard-state.json", "guard-state.json.tmp", "admin.sock",
            ".admin.sock.keywarden-lock", "gateway.sock", "handover.sock"};
        Map<Path, String> before = new LinkedHashMap<>();
        for (String n : names) {
            Path victim = victims.resolve(n.replace('.', '_'));
            Files.writeString(victim, "root's file " + n + "\n");
            Files.setPosixFilePermissions(victim, PosixFilePermissions.fromString("rw-------"));
            Files.setLastModifiedTime(victim, java.nio.file.attribute.FileTime.fromMillis(1_700_000_000_000L));
            Proc.Result ln = Proc.as(1002, "ln", "-s", victim.toString(), shared.resolve(n).toString());
            assertTrue(ln.ok(), "uid 1002 plants " + n + ": " + ln.err());
            before.put(victim, state(victim));
        }
        Daemon d = Daemon.start(Map.of(), "dev", "--listen", "127.0.0.1:" + io.keywarden.tests.support.Ports.free(), "--mount", shared.resolve("mnt").toString(), "--audit",
                shared.resolve("audit.jsonl").toString(), "--admin-socket", shared.resolve("admin.sock").toString(),
                "--gateway-socket", shared.resolve("gateway.sock").toString(), "--upstream", "openai=http://127.0.0.1:9");
        int code = exitOrStop(d);
        String err = String.join("\n", d.err) + String.join("\n", d.out);
        assertNotEquals(0, code, "the daemon must refuse to start: " + err);
        assertTrue(err.contains(shared.toString()) && err.contains("writable by others"), "names the directory and why: "
                + err);
        for (Map.Entry<Path, String> e : before.entrySet()) {
            assertEquals(e.getValue(), state(e.getKey()), e.getKey() + " changed");
        }
        for (String n : names) {
            assertTrue(Files.isSymbolicLink(shared.resolve(n)), n + " is still uid 1002's link, nothing replaced it");
        }
        assertFalse(Mounts.at(shared.resolve("mnt")).isPresent(), "nothing mounted");
    }

    @Test
    void aDirectoryOwnedByAnotherUserIsRefusedEvenWhenNotWritableByOthers() throws Exception {
        Path theirs = root.resolve("theirs");
        Files.createDirectory(theirs);
        Proc.run("chown", "1002:1002", theirs.toString());
        Daemon d = Daemon.start(Map.of(), "dev", "--listen", "127.0.0.1:" + io.keywarden.tests.support.Ports.free(), "--mount", root.resolve("mnt").toString(), "--audit",
                theirs.resolve("audit.jsonl").toString(), "--admin-socket", root.resolve("admin/admin.sock").toString());
        int code = exitOrStop(d);
        String err = String.join("\n", d.err) + String.join("\n", d.out);
        assertNotEquals(0, code, err);
        assertTrue(err.contains(theirs.toString()) && err.contains("owned by uid 1002"), err);
        if (Mounts.at(root.resolve("mnt")).isPresent()) {
            Mounts.detach(root.resolve("mnt"));
        }
    }

    @Test
    void inARootOnlyDirectoryItStartsAndSocketsHaveTheirModesFromTheStart() throws Exception {
        Path safe = root.resolve("safe");
        Files.createDirectory(safe);
        Path admin = safe.resolve("adm/admin.sock");
        Path gw = safe.resolve("gw/gateway.sock");
        Daemon d = Daemon.start(Map.of(), "dev", "--listen", "127.0.0.1:" + io.keywarden.tests.support.Ports.free(), "--mount", safe.resolve("mnt").toString(), "--audit",
                safe.resolve("ledger/audit.jsonl").toString(), "--admin-socket", admin.toString(), "--gateway-socket",
                gw.toString(), "--upstream", "openai=http://127.0.0.1:9");
        try {
            d.awaitOut("gateway socket", 30);
            assertEquals("rwx------", perms(admin.getParent()), "the admin directory is 0700");
            assertEquals("rw-------", perms(admin));
            assertEquals("rwxr-xr-x", perms(gw.getParent()), "the gateway socket's directory lets callers reach it");
            assertEquals("rw-rw-rw-", perms(gw));
            assertEquals("rwx------", perms(safe.resolve("ledger")), "the ledger's directory is private");
            List<String> leftovers = new ArrayList<>();
            Path relay = null;
            try (var s = Files.list(safe.resolve("gw"))) {
                for (Path p : s.toList()) {
                    if (p.getFileName().toString().startsWith(".kw-gateway-relay-")) {
                        relay = p;   // the relay's internal socket, while the daemon runs (Linux 6.5+)
                    } else {
                        leftovers.add(p.getFileName().toString());
                    }
                }
            }
            assertEquals(List.of("gateway.sock"), leftovers, "no private binding directory is left behind");
            if (relay != null) {
                assertEquals("rwx------", perms(relay), "the relay's internal socket is in a private directory");
            }
            Proc.Result curl = Proc.as(1001, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket",
                    gw.toString(), "http://gw/nosuchkey/x");
            assertEquals("404", curl.out().trim(), "another uid reaches the gateway socket: " + curl.err());
            assertTrue(Proc.as(1001, "sh", "-c", "echo > " + admin).code() != 0, "and not the admin socket");
        } finally {
            assertEquals(0, d.stop());
        }
        try (var s = Files.list(safe.resolve("gw"))) {
            assertEquals(List.of(), s.map(p -> p.getFileName().toString()).toList(), "nothing is left once it stopped");
        }
    }

    /** The daemon's exit code once it refused to start; a daemon that started anyway is stopped (0 then). */
    static int exitOrStop(Daemon d) throws Exception {
        try {
            return d.waitFor(30);
        } catch (AssertionError stillRunning) {
            d.stop();
            return 0;
        }
    }

    static String perms(Path p) throws Exception {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p, LinkOption.NOFOLLOW_LINKS));
    }
}
