package io.keywarden.tests.tmpfs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.delivery.TmpfsDelivery;
import io.keywarden.linux.Mounts;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.Workload;
import io.keywarden.tests.support.KwRead;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import io.keywarden.tests.support.TestKeys;
import io.keywarden.tests.support.TestPolicies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

class TmpfsDeliveryIT {
    static final String POLICY = TestPolicies.ALICE;
    static final int LENGTH = TestPolicies.KEY_LENGTH;

    static Workload alice() throws Exception {
        Policy p = PolicyLoader.parse(POLICY, "policy.yaml");
        return p.workload("alice").orElseThrow();
    }

    @Test
    void filesAreOwnedReadOnlyReplacedAtomicallyAndWipedOnStop() throws Exception {
        Requirements.root();
        KwRead.binary();
        Workload alice = alice();
        Path root = Files.createTempDirectory("kw-tmpfs-");
        Instant exp = Instant.now().plus(Duration.ofHours(1));
        try (TmpfsDelivery d = TmpfsDelivery.open(root, true)) {
            assertEquals("tmpfs", Mounts.at(root).orElseThrow().fsType(), "a private tmpfs is mounted");
            d.publish(alice, "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp));
            Path key = root.resolve("alice/openai/api_key");
            assertEquals(1001, Files.getAttribute(key, "unix:uid"));
            assertEquals("r--------", PosixFilePermissions.toString(Files.getPosixFilePermissions(key)));
            assertEquals("r-x------", PosixFilePermissions.toString(Files.getPosixFilePermissions(key.getParent())));
            assertEquals(1001, Files.getAttribute(key.getParent().getParent(), "unix:uid"));
            assertEquals("ok\n", Files.readString(root.resolve("alice/openai/status")));

            assertTrue(Proc.as(1002, "cat", key.toString()).err().contains("Permission denied"));

            // A provider-minted token: its headers file, and a status that says it cannot be revoked early.
            byte[] tok = "sk-ant-oat01-abc".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
            d.publish(alice, "claude", new io.keywarden.delivery.IssuedKey(io.keywarden.linux.Secret.copyOf(tok), exp,
                    "l1", java.util.List.of(new io.keywarden.delivery.Header("anthropic-beta", "oauth-2025-04-20"))), false);
            Path headers = root.resolve("alice/claude/headers");
            assertEquals("anthropic-beta: oauth-2025-04-20\n", Files.readString(headers));
            assertEquals(1001, Files.getAttribute(headers, "unix:uid"));
            assertEquals("r--------", PosixFilePermissions.toString(Files.getPosixFilePermissions(headers)));
            assertEquals("ok (revocable: false)\n", Files.readString(root.resolve("alice/claude/status")));
            d.publish(alice, "claude", TestKeys.issued("sk-plain-key", exp));
            assertFalse(Files.exists(headers), "no headers to send: no file");
            d.wipe(alice, "claude");

            CompletableFuture<KwRead.Stats> reader = CompletableFuture.supplyAsync(
                    () -> KwRead.run(1001, null, key, 1, 200_000, "sk-alice-", LENGTH));
            int swaps = 0;
            while (swaps < 1000 || !reader.isDone()) {
                d.publish(alice, "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp));
                swaps++;
                if (swaps > 200_000) {
                    break;
                }
            }
            KwRead.Stats s = reader.get();
            System.out.printf("tmpfs swaps: %d during %s%n", swaps, s);
            assertTrue(swaps >= 1000);
            assertEquals(0, s.bad(), "a reader saw a partial or wrong key");
            assertEquals(0, s.errors(), "a reader found no file during a swap");
            try (var left = Files.list(key.getParent())) {
                assertEquals(3, left.count(), "no temporary files are left behind");
            }

            // The workload owns its directories: emptied by it, the next publish makes them again.
            assertEquals(0, Proc.as(1001, "sh", "-c", "chmod u+w '" + root.resolve("alice") + "' '" + key.getParent()
                    + "' && rm -rf '" + key.getParent() + "'").code());
            assertFalse(Files.exists(key.getParent()));
            d.publish(alice, "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp));
            assertEquals(1001, Files.getAttribute(key, "unix:uid"));
            assertEquals("r-x------", PosixFilePermissions.toString(Files.getPosixFilePermissions(key.getParent())));
            assertEquals("ok\n", Files.readString(root.resolve("alice/openai/status")), "status written again");

            d.withdraw(alice, "openai", "key expired");
            assertFalse(Files.exists(key));
            assertEquals("error: key expired\n", Files.readString(root.resolve("alice/openai/status")));
        }
        assertTrue(Mounts.at(root).isEmpty(), "the tmpfs is unmounted on stop");
        try (var left = Files.list(root)) {
            assertEquals(0, left.count(), "nothing was written under the tmpfs");
        }
        Files.delete(root);
    }

    /**
     * The workload owns its directories, so it can chmod them and put a symlink where its key
     * directory (or its own directory) was: the root daemon must never write, chown or delete
     * through it — not when the symlink is already there, not while it is swapped in and out.
     */
    @Test
    void aSymlinkTheWorkloadPutsInPlaceOfItsDirectoryIsNeverFollowed() throws Exception {
        Requirements.root();
        Workload alice = alice();
        Path root = Files.createTempDirectory("kw-tmpfs-");
        Path target = Files.createTempDirectory("kw-target-");   // root's, 0700: what the attacker aims at
        Files.writeString(target.resolve("keep"), "root's file\n");
        Instant exp = Instant.now().plus(Duration.ofHours(1));
        try (TmpfsDelivery d = TmpfsDelivery.open(root, true)) {
            d.publish(alice, "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp));
            Path wdir = root.resolve("alice");
            Path kdir = wdir.resolve("openai");

            // Already there: the key directory swapped for a symlink to root's directory.
            assertEquals(0, Proc.as(1001, "sh", "-c", "chmod 700 '" + wdir + "' && mv '" + kdir + "' '" + kdir
                    + ".old' && ln -s '" + target + "' '" + kdir + "'").code());
            IOException e = assertThrows(IOException.class,
                    () -> d.publish(alice, "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp)));
            assertTrue(e.getMessage().contains("not a directory"), e.getMessage());
            assertTargetUntouched(target);
            d.wipe(alice, "openai");   // removes the symlink, not what it points to
            assertTargetUntouched(target);
            assertFalse(Files.exists(kdir, java.nio.file.LinkOption.NOFOLLOW_LINKS));

            // The workload's own directory swapped for a symlink: the workload cannot do this (its
            // directory's entry is in root's tmpfs root), so root plants it — the same refusal holds.
            d.publish(alice, "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp));
            assertEquals(0, Proc.as(1001, "sh", "-c", "chmod 700 '" + wdir + "'").code());
            Proc.run("sh", "-c", "mv '" + wdir + "' '" + root.resolve("alice.old") + "' && ln -s '" + target + "' '"
                    + wdir + "'");
            assertThrows(IOException.class,
                    () -> d.publish(alice, "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp)));
            d.wipe(alice, "openai");
            assertTargetUntouched(target);
            Proc.run("rm", "-rf", root.resolve("alice.old").toString(), wdir.toString());

            // Swapped in and out while the daemon writes: a python3 of the workload's uid races it.
            d.publish(alice, "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp));
            assertEquals(0, Proc.as(1001, "chmod", "700", wdir.toString()).code());
            // renameat2(RENAME_EXCHANGE): the directory and a symlink to root's directory trade places
            // atomically, over and over — the strongest form of the swap.
            String swap = "import ctypes,os,sys,time\n"
                    + "libc=ctypes.CDLL(None,use_errno=True)\n"
                    + "d,t,end=sys.argv[1],sys.argv[2],time.time()+float(sys.argv[3])\n"
                    + "os.symlink(t,d+'.lnk')\n"
                    + "while time.time()<end:\n"
                    + "  libc.renameat2(-100,d.encode(),-100,(d+'.lnk').encode(),2)\n";
            ProcessBuilder pb = new ProcessBuilder("setpriv", "--reuid=1001", "--regid=1001", "--clear-groups",
                    "/usr/bin/python3", "-c", swap, kdir.toString(), target.toString(), "4");
            pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD);
            Process attacker = pb.start();
            int published = 0;
            int refused = 0;
            try {
                while (attacker.isAlive()) {
                    try {
                        d.publish(alice, "openai", TestKeys.issued(TestKeys.random("sk-alice-", LENGTH), exp));
                        published++;
                    } catch (IOException refusedWrite) {
                        refused++;
                    }
                }
            } finally {
                attacker.destroyForcibly();
                attacker.waitFor();
            }
            System.out.printf("tmpfs symlink race: %d publishes done, %d refused while the workload swapped%n",
                    published, refused);
            assertTrue(published + refused > 100, "the race ran: " + published + " + " + refused);
            assertTargetUntouched(target);
            d.wipe(alice, "openai");
            assertTargetUntouched(target);
        } finally {
            Proc.run("rm", "-rf", target.toString());
            Proc.run("sh", "-c", "umount -l '" + root + "' 2>/dev/null; rm -rf '" + root + "'");
        }
    }

    static void assertTargetUntouched(Path target) throws Exception {
        try (var left = Files.list(target)) {
            assertEquals(List.of("keep"), left.map(p -> p.getFileName().toString()).sorted().toList(),
                    "nothing written into root's directory through the symlink");
        }
        assertEquals("root's file\n", Files.readString(target.resolve("keep")));
        assertEquals(0, Files.getAttribute(target, "unix:uid"), "root's directory not given away");
        assertEquals(0, Files.getAttribute(target.resolve("keep"), "unix:uid"));
    }

    @Test
    void aHeadersFileLeftByAnEarlierRunIsRemovedWhenTheKeyHasNone() throws Exception {
        Requirements.root();
        Workload alice = alice();
        Path root = Files.createTempDirectory(Path.of("/dev/shm"), "kw-tmpfs-");
        try {
            Files.createDirectories(root.resolve("alice/claude"));
            Files.writeString(root.resolve("alice/claude/headers"), "anthropic-beta: old\n");
            try (TmpfsDelivery d = TmpfsDelivery.open(root, false)) {
                d.publish(alice, "claude", TestKeys.issued("sk-plain-key", Instant.now().plus(Duration.ofHours(1))));
                assertFalse(Files.exists(root.resolve("alice/claude/headers")), "a stale headers file is not served");
                assertTrue(Files.exists(root.resolve("alice/claude/api_key")));
            }
        } finally {
            Proc.run("rm", "-rf", root.toString());
        }
    }

    @Test
    void diskBackedDirectoryIsRefusedWithoutRoot() throws Exception {
        Path onDisk = Files.createTempDirectory(Path.of(System.getProperty("java.io.tmpdir")), "kw-disk-");
        try {
            String fs = Mounts.containing(onDisk).fsType();
            org.junit.jupiter.api.Assumptions.assumeFalse(fs.equals("tmpfs"), "java.io.tmpdir is itself a tmpfs here");
            IOException e = assertThrows(IOException.class, () -> TmpfsDelivery.open(onDisk, false));
            assertTrue(e.getMessage().contains("not on a tmpfs"), e.getMessage());
        } finally {
            Files.delete(onDisk);
        }
    }
}
