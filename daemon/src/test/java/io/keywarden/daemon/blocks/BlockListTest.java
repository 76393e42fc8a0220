package io.keywarden.daemon.blocks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.daemon.lifecycle.KillSwitch;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One owner of blocks: the persisted list and the kill switch the lease core reads stay in step. */
class BlockListTest {
    static final String ALICE = "spiffe://t/alice";

    @TempDir
    Path dir;

    static Policy policy(String name) {
        try {
            return PolicyLoader.parse("keys: {openai: {}}\nworkloads:\n  - {name: " + name + ", spiffeId: \"" + ALICE
                + "\", selectors: [\"unix:uid:1001\"], keys: [openai]}\n", "p.yaml");
        } catch (io.keywarden.policy.yaml.ProblemsException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void aBlockIsEnforcedPersistedAndSurvivesARestartAndARename() throws Exception {
        Path file = dir.resolve("state/blocks.json");
        AtomicReference<Policy> p = new AtomicReference<>(policy("alice"));
        KillSwitch ks = new KillSwitch();
        BlockList b = BlockList.load(file, ks, p::get);
        assertEquals(Optional.empty(), b.block(ALICE, "operator: leaked"));
        assertEquals(Optional.of("operator: leaked"), ks.reason("alice"));
        assertTrue(Files.readString(file).contains(ALICE));

        KillSwitch again = new KillSwitch();
        BlockList.load(file, again, p::get);
        assertEquals(Map.of("alice", "operator: leaked"), again.all(), "a restart keeps the block");

        p.set(policy("alice-v2"));
        b.apply(p.get());
        assertEquals(Optional.of("operator: leaked"), ks.reason("alice-v2"), "by SPIFFE ID: a renamed workload stays blocked");

        assertTrue(b.unblock(ALICE));
        assertTrue(ks.reason("alice-v2").isEmpty());
        assertFalse(b.unblock(ALICE), "nothing left to lift");
        assertEquals(Map.of(), BlockList.load(file, new KillSwitch(), p::get).all());
    }

    @Test
    void anUnwritableListStillBlocksButNeverUnblocks() throws Exception {
        Path state = dir.resolve("state");
        AtomicReference<Policy> p = new AtomicReference<>(policy("alice"));
        KillSwitch ks = new KillSwitch();
        BlockList b = BlockList.load(state.resolve("blocks.json"), ks, p::get);
        assertEquals(Optional.empty(), b.block(ALICE, "first"));
        // The list's directory replaced by a file: every write now fails.
        Files.move(state, dir.resolve("moved"));
        Files.writeString(state, "not a directory");
        Optional<String> warning = b.block(ALICE, "second");
        assertTrue(warning.orElse("").startsWith("the block is not persisted"), warning.toString());
        assertEquals(Optional.of("second"), ks.reason("alice"), "taking access away is never held back");
        assertThrows(java.io.IOException.class, () -> b.unblock(ALICE));
        assertEquals(Optional.of("second"), ks.reason("alice"), "giving access back is all or nothing");
        assertEquals(Optional.of("second"), b.reason(ALICE));
    }

    @Test
    void aListThatCannotBeReadIsRefusedNotDropped() throws Exception {
        Path file = dir.resolve("blocks.json");
        Files.writeString(file, "{not json");
        java.io.IOException e = assertThrows(java.io.IOException.class,
                () -> BlockList.load(file, new KillSwitch(), () -> policy("alice")));
        assertTrue(e.getMessage().contains("blocks are never lifted silently"), e.getMessage());
    }
}
