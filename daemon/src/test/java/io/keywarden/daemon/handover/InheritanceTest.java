package io.keywarden.daemon.handover;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.attestation.CgroupInfo;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.issuer.Lease;
import io.keywarden.daemon.lifecycle.LeaseManager.HandedSlot;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.DirentList;
import io.keywarden.fuse.FuseSession;
import io.keywarden.linux.Secret;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class InheritanceTest {
    private static final String KEY = "sk-test-" + "K".repeat(40);
    private static final String OLD_KEY = "sk-test-" + "O".repeat(40);

    private static Lease lease(String key, String id, boolean revocable) {
        return new Lease(new IssuedKey(Secret.copyOf(key.getBytes(StandardCharsets.UTF_8)),
                Instant.parse("2026-12-01T00:00:00Z"), id, revocable ? java.util.List.of() : java.util.List.of(new io.keywarden.delivery.Header("anthropic-beta",
                        "oauth-2025-04-20"))),
                Instant.parse("2026-11-30T23:00:00Z"), true, revocable ? Optional.of("key_abc") : Optional.empty(), "bao",
                revocable, revocable ? Optional.of(Instant.parse("2026-12-01T00:01:00Z")) : Optional.empty());
    }

    private static Inheritance sample() {
        ProcessInfo holder = new ProcessInfo(4242, 987654, 1001, 1001, 0, Optional.empty(), Optional.empty(),
                CgroupInfo.NONE, Optional::empty);
        HandedSlot slot = new HandedSlot("agent", "spiffe://example.org/agent", "openai", false, lease(KEY, "lease/1", true),
                lease(OLD_KEY, "lease/0", false), Instant.parse("2026-11-30T23:00:00Z"), List.of(holder), List.of());
        KeyFs.State fs = new KeyFs.State(1700000000L, Map.of("openai", 1L), 2, Map.of("agent", 1L), 2,
                Map.of(7L, Secret.copyOf(KEY.getBytes(StandardCharsets.UTF_8))),
                Map.of(8L, List.of(new DirentList.Entry(1, ".", DirentList.DT_DIR))), 9,
                Map.of(1099511627793L, new KeyFs.Generation(5, "sha256:0123456789abcdef", 20, 1764540000000L), 1099511627794L,
                        new KeyFs.Generation(2, null, -1, 0)), Map.of(7L, new KeyFs.ApiKeyHandle(1099511627793L, "sha256:0123456789abcdef")));
        return new Inheritance(100, "0.1.0", Path.of("/run/keywarden"), new FuseSession.Handoff(5, 41, true, 77), fs,
                List.of(slot), Map.of("bao", "{\"tokenOfLease\":{\"lease/1\":\"hvs.SECRET\"}}".getBytes(StandardCharsets.UTF_8)),
                List.of(PENDING));
    }

    /** A lease whose revoke the provider had refused twice when the handover came. */
    private static final io.keywarden.daemon.lifecycle.Unrevoked.Entry PENDING = new io.keywarden.daemon.lifecycle.Unrevoked.Entry(
            "agent", "spiffe://example.org/agent", "openai", "openai/creds/agent/old", "sha256:0123456789abcdef", "key_old",
            "bao", 2, "vault revoke: HTTP 400", Instant.parse("2026-11-30T23:30:00Z"), Instant.parse("2026-11-30T23:30:06Z"),
            Instant.parse("2026-12-01T00:00:00Z"), Optional.of(Instant.parse("2026-12-01T00:01:00Z")),
            io.keywarden.daemon.lifecycle.RevokeReason.OPERATOR, "revoked by drill");

    @Test
    void roundTripsEverythingAndKeepsKeysOutOfTheDescription() throws IOException {
        byte[] frame = sample().encode();
        int jsonLength = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN).getInt();
        String description = new String(frame, 4, jsonLength, StandardCharsets.UTF_8);
        assertFalse(description.contains("sk-test-") || description.contains("hvs."), "no key or token in the JSON part");
        Inheritance in = Inheritance.decode(frame, 9);
        assertTrue(allZero(frame), "the frame is wiped after decoding");
        assertEquals(9, in.fuse().fd());
        assertEquals(41, in.fuse().kernelMinor());
        assertTrue(in.fuse().requestTimeout());
        assertEquals(Path.of("/run/keywarden"), in.mountPoint());
        assertEquals(1L, in.keyFs().keyIndex().get("openai"));
        assertEquals(9, in.keyFs().nextHandle());
        assertEquals(KEY, new String(in.keyFs().openFiles().get(7L).toByteArray(), StandardCharsets.UTF_8));
        assertEquals(Map.of(1099511627793L, new KeyFs.Generation(5, "sha256:0123456789abcdef", 20, 1764540000000L), 1099511627794L,
                new KeyFs.Generation(2, null, -1, 0)), in.keyFs().generations(), "api_key generations (format 4)");
        assertEquals(Map.of(7L, new KeyFs.ApiKeyHandle(1099511627793L, "sha256:0123456789abcdef")),
                in.keyFs().apiKeyHandles());
        assertEquals(".", in.keyFs().openDirs().get(8L).get(0).name());
        HandedSlot s = in.leases().get(0);
        assertEquals("spiffe://example.org/agent", s.spiffeId());
        assertTrue(s.current().key().sameSecretAs(lease(KEY, "x", true).key()));
        assertEquals(IssuedKey.fingerprint(KEY), s.current().key().fingerprint());
        assertEquals(Optional.of("key_abc"), s.current().providerKeyId());
        assertEquals(Optional.of(Instant.parse("2026-12-01T00:01:00Z")), s.current().providerExpiresAt(),
                "the provider's expiry of the key travels with it");
        assertEquals(Optional.empty(), s.previous().providerExpiresAt());
        assertEquals("bao", s.current().issuer());
        assertFalse(s.previous().revocable());
        assertEquals(java.util.List.of(new io.keywarden.delivery.Header("anthropic-beta", "oauth-2025-04-20")),
                s.previous().key().headers());
        assertEquals(4242, s.holders().get(0).pid());
        assertEquals("{\"tokenOfLease\":{\"lease/1\":\"hvs.SECRET\"}}", new String(in.issuerState().get("bao"),
                StandardCharsets.UTF_8));
        assertEquals(987654, s.holders().get(0).startTime());
        assertEquals(List.of(PENDING), in.unrevoked(), "a pending revoke travels to the successor");
        assertEquals("sha256:0123456789abcdef", in.unrevoked().get(0).lease().key().fingerprint());
        assertThrows(IllegalStateException.class, () -> in.unrevoked().get(0).lease().key().secretCopy(),
                "only the lease travels, never a key: it cannot be served");
        assertFalse(in.toString().contains("sk-test-") || s.toString().contains("sk-test-"));
        in.destroy();
        assertTrue(s.current().key().isDestroyed());
    }

    @Test
    void aMalformedFrameIsAnErrorNamingWhatIsWrong() throws IOException {
        assertTrue(assertThrows(IOException.class, () -> Inheritance.decode(new byte[3], -1)).getMessage().contains("3 bytes"));
        byte[] frame = sample().encode();
        byte[] cut = Arrays.copyOf(frame, frame.length - 20);
        assertTrue(assertThrows(IOException.class, () -> Inheritance.decode(cut, -1)).getMessage()
                .contains("points outside the frame"));
        byte[] lying = sample().encode();
        ByteBuffer.wrap(lying).order(ByteOrder.LITTLE_ENDIAN).putInt(0, lying.length);
        assertTrue(assertThrows(IOException.class, () -> Inheritance.decode(lying, -1)).getMessage()
                .contains("does not fit"));
        byte[] notJson = ByteBuffer.allocate(10).order(ByteOrder.LITTLE_ENDIAN).putInt(6).put("{nope}".getBytes()).array();
        assertThrows(IOException.class, () -> Inheritance.decode(notJson, -1));
    }

    /** {@code frame} with its JSON description replaced by what {@code edit} makes of it. */
    private static byte[] withDescription(byte[] frame, java.util.function.UnaryOperator<String> edit) {
        int jsonLength = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN).getInt();
        byte[] json = edit.apply(new String(frame, 4, jsonLength, StandardCharsets.UTF_8)).getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(4 + json.length + frame.length - 4 - jsonLength).order(ByteOrder.LITTLE_ENDIAN)
                .putInt(json.length).put(json).put(frame, 4 + jsonLength, frame.length - 4 - jsonLength).array();
    }

    @Test
    void theFrameIsVersionedAndAFormatOrFieldItDoesNotKnowIsRefused() throws IOException {
        byte[] now = sample().encode();
        assertTrue(new String(now, 4, 200, StandardCharsets.UTF_8).startsWith("{\"format\":" + Inheritance.FORMAT + ","));
        // Format 1 (the builds before formats: no marker, the same fields) still decodes.
        byte[] old = sample().encode(1);
        assertFalse(new String(old, StandardCharsets.ISO_8859_1).contains("\"format\""));
        Inheritance in = Inheritance.decode(old, 9);
        assertEquals("spiffe://example.org/agent", in.leases().get(0).spiffeId());
        assertEquals(List.of(), in.unrevoked(), "format 1 cannot carry pending revokes");
        assertEquals(Optional.empty(), in.leases().get(0).current().providerExpiresAt());
        in.destroy();
        Inheritance two = Inheritance.decode(sample().encode(2), 9);
        assertEquals(List.of(), two.unrevoked(), "nor can format 2");
        two.destroy();
        Inheritance three = Inheritance.decode(sample().encode(3), 9);
        assertEquals(null, three.keyFs().generations(), "format 3 has no api_key generations: the successor starts later");
        assertEquals(Map.of(), three.keyFs().apiKeyHandles());
        three.destroy();
        byte[] future = withDescription(sample().encode(), d -> d.replace("\"format\":4", "\"format\":99"));
        String why = assertThrows(IOException.class, () -> Inheritance.decode(future, -1)).getMessage();
        assertTrue(why.contains("format 99") && why.contains("[1, 2, 3, 4]"), why);
        for (String field : List.of("\"kernelMinor\":41,", "\"eager\":false,", "\"revocable\":true", "\"holders\":",
                "\"fromVersion\":\"0.1.0\",", "\"unrevoked\":", "\"leaseEnd\":\"2026-12-01T00:00:00Z\",",
                "\"apiKeyHandles\":", "\"count\":5,")) {
            byte[] missing = withDescription(sample().encode(), d -> field.endsWith(":")
                    ? d.replace(field, field.replace("s\":", "z\":").replace("d\":", "x\":"))
                    : d.replace(field, field.endsWith(",") ? "" : "\"x\":1"));
            String what = assertThrows(IOException.class, () -> Inheritance.decode(missing, -1), field).getMessage();
            assertTrue(what.contains("is missing"), field + " -> " + what);
        }
        assertThrows(IllegalArgumentException.class, () -> sample().encode(5));
    }

    private static boolean allZero(byte[] b) {
        for (byte x : b) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }
}
