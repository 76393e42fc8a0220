package io.keywarden.daemon.handover;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.keywarden.attestation.CgroupInfo;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.issuer.Lease;
import io.keywarden.daemon.lifecycle.LeaseManager.HandedSlot;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.delivery.KeyFs;
import io.keywarden.fuse.DirentList;
import io.keywarden.fuse.FuseSession;
import io.keywarden.linux.Secret;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What a daemon hands its successor: the FUSE connection (the descriptor travels beside the
 * frame, {@code SCM_RIGHTS}), KeyFS's numbering and open handles, and the live leases with their
 * holders. Encoded as one frame: a 4-byte length, a JSON description without any secret, then the
 * secrets themselves as raw bytes the JSON points into ({@code {"at": n, "len": m}}), so no key
 * ever becomes a Java string. The encoder's and decoder's arrays are wiped after use.
 *
 * <p>Versioned: the description carries {@code format} ({@link #FORMAT}; a frame without it is
 * format 1, what the builds before formats wrote: the same fields). The successor says which
 * formats it reads, the daemon writes the newest both know or refuses before stopping anything,
 * and the decoder refuses a format it does not know and any missing field, naming it: a rolling
 * upgrade across a format change never loses state silently.
 *
 * <p>Over 400 lines: the wire format's four versions, written and read side by side (with the
 * checks that refuse an unknown format or a missing field), so a change to one is seen against all.
 *
 * @param fromPid     the daemon that handed over
 * @param fromVersion its version
 * @param mountPoint  the mount it served
 * @param fuse        the connection (its {@code fd} is the receiver's copy once received)
 * @param keyFs       KeyFS's state (the receiver owns the file contents)
 * @param leases      the lease slots (the receiver owns the keys)
 * @param issuerState each issuer instance's {@code handoverState()} by name (secret: Vault tokens)
 * @param unrevoked   the leases whose revoke had not been taken yet (format 3; the successor retries them)
 */
public record Inheritance(long fromPid, String fromVersion, Path mountPoint, FuseSession.Handoff fuse, KeyFs.State keyFs,
                          List<HandedSlot> leases, Map<String, byte[]> issuerState,
                          List<io.keywarden.daemon.lifecycle.Unrevoked.Entry> unrevoked) {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The frame format this build writes by default; bump it with any change of fields or meaning. */
    public static final int FORMAT = 4;
    /**
     * The formats this build writes and reads: 1 (no {@code format} field) and 2 carry the same
     * fields; 3 adds the unrevoked leases and each lease's {@code providerExpiresAt} (optional); 4
     * adds KeyFS's api_key generations and the handles read through the page cache (a successor
     * given 1–3 serves no open on an inode the predecessor's kernel state may hold: every api_key
     * starts a generation later).
     * Written as 1 or 2 (to an older successor), a frame leaves the unrevoked leases behind: the
     * handover server says so.
     */
    public static final java.util.SortedSet<Integer> FORMATS = java.util.Collections.unmodifiableSortedSet(
            new java.util.TreeSet<>(List.of(1, 2, 3, 4)));

    /** Far above any real node (a thousand leases and handles are some hundred KB). */
    public static final int MAX_BYTES = 64 << 20;

    @Override
    public String toString() {
        return "Inheritance[from pid " + fromPid + ", " + mountPoint + ", " + leases.size() + " leases, "
                + keyFs.openFiles().size() + " open files]";
    }

    /** Wipes every key and file content this inheritance holds (when it is not taken over after all). */
    public void destroy() {
        keyFs.openFiles().values().forEach(Secret::close);
        issuerState.values().forEach(b -> Arrays.fill(b, (byte) 0));
        for (HandedSlot s : leases) {
            if (s.current() != null) {
                s.current().key().destroy();
            }
            if (s.previous() != null) {
                s.previous().key().destroy();
            }
        }
    }

    /** The frame's bytes in {@link #FORMAT} (the caller sends them with {@code fuse.fd()} and wipes them). */
    public byte[] encode() throws IOException {
        return encode(FORMAT);
    }

    /** The frame's bytes in {@code format}, one of {@link #FORMATS}. */
    public byte[] encode(int format) throws IOException {
        if (!FORMATS.contains(format)) {
            throw new IllegalArgumentException("handover format " + format + " is not one this build writes " + FORMATS);
        }
        int estimate = 4096;
        for (Secret c : keyFs.openFiles().values()) {
            estimate += c.length();
        }
        estimate += leases.size() * 2 * 8192;
        for (byte[] b : issuerState.values()) {
            estimate += b.length;
        }
        // Sized so it does not grow (growing leaves copies of keys behind that nothing can wipe).
        WipingBuffer blob = new WipingBuffer(estimate);
        ObjectNode root = JSON.createObjectNode();
        if (format > 1) {
            root.put("format", format);
        }
        root.put("fromPid", fromPid).put("fromVersion", fromVersion).put("mountPoint", mountPoint.toString());
        root.putObject("fuse").put("kernelMinor", fuse.kernelMinor()).put("requestTimeout", fuse.requestTimeout())
                .put("connectionId", fuse.connectionId());
        ObjectNode fs = root.putObject("keyFs");
        fs.put("mountTime", keyFs.mountTime()).put("nextKeyIndex", keyFs.nextKeyIndex())
                .put("nextWorkloadSlot", keyFs.nextWorkloadSlot()).put("nextHandle", keyFs.nextHandle());
        ObjectNode keys = fs.putObject("keyIndex");
        keyFs.keyIndex().forEach(keys::put);
        ObjectNode slots = fs.putObject("workloadSlot");
        keyFs.workloadSlot().forEach(slots::put);
        if (format >= 4) {
            ObjectNode gens = fs.putObject("apiKeyGenerations");
            (keyFs.generations() == null ? Map.<Long, KeyFs.Generation>of() : keyFs.generations()).forEach((node, g) -> gens.putObject(Long.toString(node)).put("count", g.count())
                    .put("fingerprint", g.fingerprint()).put("length", g.length()).put("since", g.sinceMillis()));
            ObjectNode cached = fs.putObject("apiKeyHandles");
            keyFs.apiKeyHandles().forEach((fh, h) -> cached.putObject(Long.toString(fh)).put("node", h.node())
                    .put("fingerprint", h.fingerprint()));
        }
        ObjectNode files = fs.putObject("openFiles");
        byte[][] wipe = new byte[1][];
        try {
            for (Map.Entry<Long, Secret> e : keyFs.openFiles().entrySet()) {
                wipe[0] = e.getValue().toByteArray();
                files.set(Long.toString(e.getKey()), secret(blob, wipe[0]));
                Arrays.fill(wipe[0], (byte) 0);
            }
            ObjectNode dirs = fs.putObject("openDirs");
            keyFs.openDirs().forEach((fh, entries) -> {
                ArrayNode a = dirs.putArray(Long.toString(fh));
                entries.forEach(d -> a.addObject().put("ino", d.ino()).put("name", d.name()).put("type", d.type()));
            });
            ArrayNode ls = root.putArray("leases");
            for (HandedSlot s : leases) {
                ObjectNode o = ls.addObject();
                o.put("workload", s.workload()).put("spiffeId", s.spiffeId()).put("key", s.key()).put("eager", s.eager());
                if (s.lastRefresh() != null) {
                    o.put("lastRefresh", s.lastRefresh().toString());
                }
                if (s.current() != null) {
                    o.set("current", lease(blob, s.current(), format));
                }
                if (s.previous() != null) {
                    o.set("previous", lease(blob, s.previous(), format));
                }
                o.set("holders", processes(s.holders()));
                o.set("previousHolders", processes(s.previousHolders()));
            }
            if (format >= 3) {
                ArrayNode un = root.putArray("unrevoked");
                for (io.keywarden.daemon.lifecycle.Unrevoked.Entry e : unrevoked) {
                    ObjectNode o = un.addObject().put("workload", e.workload()).put("spiffeId", e.spiffeId())
                            .put("key", e.key()).put("leaseId", e.leaseId()).put("fingerprint", e.fingerprint())
                            .put("issuer", e.issuer()).put("attempts", e.attempts()).put("lastError", e.lastError())
                            .put("firstFailure", e.firstFailure().toString()).put("leaseEnd", e.leaseEnd().toString())
                            .put("code", e.code().name()).put("reason", e.reason());
                    if (e.providerKeyId() != null) {
                        o.put("providerKeyId", e.providerKeyId());
                    }
                    if (e.nextTry() != null) {
                        o.put("nextTry", e.nextTry().toString());
                    }
                    e.providerExpiresAt().ifPresent(at -> o.put("providerExpiresAt", at.toString()));
                }
            }
            ObjectNode issuers = root.putObject("issuerState");
            for (Map.Entry<String, byte[]> e : issuerState.entrySet()) {
                issuers.set(e.getKey(), secret(blob, e.getValue()));
            }
            byte[] json = JSON.writeValueAsBytes(root);
            byte[] secrets = blob.toByteArray();
            byte[] out = ByteBuffer.allocate(4 + json.length + secrets.length).order(ByteOrder.LITTLE_ENDIAN)
                    .putInt(json.length).put(json).put(secrets).array();
            Arrays.fill(secrets, (byte) 0);
            return out;
        } finally {
            if (wipe[0] != null) {
                Arrays.fill(wipe[0], (byte) 0);
            }
            blob.wipe();
        }
    }

    /** A byte buffer whose array is zeroed after use. */
    private static final class WipingBuffer extends ByteArrayOutputStream {
        WipingBuffer(int size) {
            super(size);
        }

        void wipe() {
            Arrays.fill(buf, (byte) 0);
            count = 0;
        }
    }

    private static ObjectNode secret(ByteArrayOutputStream blob, byte[] bytes) {
        ObjectNode o = JSON.createObjectNode().put("at", blob.size()).put("len", bytes.length);
        blob.write(bytes, 0, bytes.length);
        return o;
    }

    private static ObjectNode lease(ByteArrayOutputStream blob, Lease l, int format) {
        byte[] k = l.key().secretCopy();
        try {
            ObjectNode o = JSON.createObjectNode();
            o.set("secret", secret(blob, k));
            o.put("expiresAt", l.expiresAt().toString()).put("leaseId", l.leaseId())
                    .put("headers", io.keywarden.delivery.Header.file(l.key().headers()))
                    .put("issuedAt", l.issuedAt().toString()).put("renewable", l.renewable())
                    .put("issuer", l.issuer()).put("revocable", l.revocable());
            l.providerKeyId().ifPresent(id -> o.put("providerKeyId", id));
            if (format >= 3) {
                l.providerExpiresAt().ifPresent(at -> o.put("providerExpiresAt", at.toString()));
            }
            return o;
        } finally {
            Arrays.fill(k, (byte) 0);
        }
    }

    private static ArrayNode processes(List<ProcessInfo> ps) {
        ArrayNode a = JSON.createArrayNode();
        ps.forEach(p -> a.addObject().put("pid", p.pid()).put("startTime", p.startTime()).put("uid", p.uid())
                .put("gid", p.gid()));
        return a;
    }

    /**
     * Reads a frame from a predecessor; {@code fd} is the descriptor that came with it. Wipes
     * {@code frame}. A malformed frame is an {@link IOException} naming what is wrong, and
     * whatever was decoded so far is wiped.
     */
    public static Inheritance decode(byte[] frame, int fd) throws IOException {
        List<Secret> made = new ArrayList<>();
        try {
            if (frame.length < 4) {
                throw new IOException("the handover frame is " + frame.length + " bytes");
            }
            int jsonLength = ByteBuffer.wrap(frame).order(ByteOrder.LITTLE_ENDIAN).getInt();
            if (jsonLength < 2 || jsonLength > frame.length - 4) {
                throw new IOException("the handover frame's description length " + jsonLength + " does not fit its "
                        + frame.length + " bytes");
            }
            int blobAt = 4 + jsonLength;
            JsonNode root = JSON.readTree(frame, 4, jsonLength);
            Reader r = new Reader(frame, blobAt, made);
            long format = root.has("format") ? r.number(root, "format") : 1;
            if (!FORMATS.contains((int) format) || format != (int) format) {
                throw new IOException("the handover frame is format " + format + "; this build reads formats " + FORMATS
                        + " (the predecessor is newer than this successor knows)");
            }
            JsonNode f = r.object(root, "fuse");
            JsonNode fs = r.object(root, "keyFs");
            Map<String, Long> keyIndex = new HashMap<>();
            r.object(fs, "keyIndex").fields().forEachRemaining(e -> keyIndex.put(e.getKey(), e.getValue().asLong()));
            Map<String, Long> slots = new HashMap<>();
            r.object(fs, "workloadSlot").fields().forEachRemaining(e -> slots.put(e.getKey(), e.getValue().asLong()));
            Map<Long, Secret> files = new HashMap<>();
            var it = r.object(fs, "openFiles").fields();
            while (it.hasNext()) {
                var e = it.next();
                files.put(Long.parseLong(e.getKey()), r.secret(e.getValue()));
            }
            Map<Long, List<DirentList.Entry>> dirs = new HashMap<>();
            var dit = r.object(fs, "openDirs").fields();
            while (dit.hasNext()) {
                var e = dit.next();
                List<DirentList.Entry> entries = new ArrayList<>();
                for (JsonNode d : e.getValue()) {
                    entries.add(new DirentList.Entry(r.number(d, "ino"), r.text(d, "name"), (int) r.number(d, "type")));
                }
                dirs.put(Long.parseLong(e.getKey()), entries);
            }
            Map<Long, KeyFs.Generation> generations = null;
            Map<Long, KeyFs.ApiKeyHandle> apiKeyHandles = new HashMap<>();
            if (format >= 4) {
                generations = new HashMap<>();
                var git = r.object(fs, "apiKeyGenerations").fields();
                while (git.hasNext()) {
                    var e = git.next();
                    JsonNode g = e.getValue();
                    generations.put(Long.parseLong(e.getKey()), new KeyFs.Generation(r.number(g, "count"),
                            g.hasNonNull("fingerprint") ? r.text(g, "fingerprint") : null, (int) r.number(g, "length"),
                            r.number(g, "since")));
                }
                var hit = r.object(fs, "apiKeyHandles").fields();
                while (hit.hasNext()) {
                    var e = hit.next();
                    apiKeyHandles.put(Long.parseLong(e.getKey()), new KeyFs.ApiKeyHandle(r.number(e.getValue(), "node"),
                            r.text(e.getValue(), "fingerprint")));
                }
            }
            KeyFs.State state = new KeyFs.State(r.number(fs, "mountTime"), keyIndex, r.number(fs, "nextKeyIndex"),
                    slots, r.number(fs, "nextWorkloadSlot"), files, dirs, r.number(fs, "nextHandle"), generations,
                    apiKeyHandles);
            List<HandedSlot> leases = new ArrayList<>();
            for (JsonNode o : r.array(root, "leases")) {
                leases.add(new HandedSlot(r.text(o, "workload"), r.text(o, "spiffeId"), r.text(o, "key"),
                        r.bool(o, "eager"), o.has("current") ? r.lease(o.get("current")) : null,
                        o.has("previous") ? r.lease(o.get("previous")) : null,
                        o.hasNonNull("lastRefresh") ? Instant.parse(o.get("lastRefresh").asText()) : null,
                        processes(r, r.array(o, "holders")), processes(r, r.array(o, "previousHolders"))));
            }
            Map<String, byte[]> issuers = new HashMap<>();
            var iit = r.object(root, "issuerState").fields();
            while (iit.hasNext()) {
                var e = iit.next();
                issuers.put(e.getKey(), r.bytes(e.getValue()));
            }
            List<io.keywarden.daemon.lifecycle.Unrevoked.Entry> unrevoked = new ArrayList<>();
            if (format >= 3) {
                for (JsonNode o : r.array(root, "unrevoked")) {
                    unrevoked.add(new io.keywarden.daemon.lifecycle.Unrevoked.Entry(r.text(o, "workload"),
                            r.text(o, "spiffeId"), r.text(o, "key"), r.text(o, "leaseId"), r.text(o, "fingerprint"),
                            o.hasNonNull("providerKeyId") ? o.get("providerKeyId").asText() : null, r.text(o, "issuer"),
                            (int) r.number(o, "attempts"), r.text(o, "lastError"), Instant.parse(r.text(o, "firstFailure")),
                            o.hasNonNull("nextTry") ? Instant.parse(o.get("nextTry").asText()) : null,
                            Instant.parse(r.text(o, "leaseEnd")), Optional.ofNullable(o.hasNonNull("providerExpiresAt")
                            ? Instant.parse(o.get("providerExpiresAt").asText()) : null),
                            io.keywarden.daemon.lifecycle.RevokeReason.valueOf(r.text(o, "code")), r.text(o, "reason")));
                }
            }
            Inheritance in = new Inheritance(r.number(root, "fromPid"), r.text(root, "fromVersion"),
                    Path.of(r.text(root, "mountPoint")), new FuseSession.Handoff(fd, (int) r.number(f, "kernelMinor"),
                    r.bool(f, "requestTimeout"), r.number(f, "connectionId")), state, leases, issuers,
                    List.copyOf(unrevoked));
            made.clear();
            return in;
        } catch (RuntimeException e) {
            throw new IOException("the handover frame is malformed: " + e.getMessage(), e);
        } finally {
            made.forEach(Secret::close);
            Arrays.fill(frame, (byte) 0);
        }
    }

    private static List<ProcessInfo> processes(Reader r, JsonNode a) throws IOException {
        List<ProcessInfo> out = new ArrayList<>();
        for (JsonNode p : a) {
            out.add(new ProcessInfo((int) r.number(p, "pid"), r.number(p, "startTime"), (int) r.number(p, "uid"),
                    (int) r.number(p, "gid"), 0, Optional.empty(), Optional.empty(), CgroupInfo.NONE, Optional::empty));
        }
        return out;
    }

    /** Reads fields of the description, and secrets from the blob after it. */
    private record Reader(byte[] frame, int blobAt, List<Secret> made) {
        JsonNode object(JsonNode n, String field) throws IOException {
            JsonNode v = n.get(field);
            if (v == null || !v.isObject()) {
                throw new IOException("'" + field + "' is missing");
            }
            return v;
        }

        JsonNode array(JsonNode n, String field) throws IOException {
            JsonNode v = n.get(field);
            if (v == null || !v.isArray()) {
                throw new IOException("'" + field + "' is missing");
            }
            return v;
        }

        boolean bool(JsonNode n, String field) throws IOException {
            JsonNode v = n.get(field);
            if (v == null || !v.isBoolean()) {
                throw new IOException("'" + field + "' is missing");
            }
            return v.asBoolean();
        }

        String text(JsonNode n, String field) throws IOException {
            JsonNode v = n.get(field);
            if (v == null || !v.isTextual()) {
                throw new IOException("'" + field + "' is missing");
            }
            return v.asText();
        }

        long number(JsonNode n, String field) throws IOException {
            JsonNode v = n.get(field);
            if (v == null || !v.isIntegralNumber()) {
                throw new IOException("'" + field + "' is missing");
            }
            return v.asLong();
        }

        /** {start, length} in the frame of a blob reference {@code {"at", "len"}}, checked to lie inside it. */
        int[] range(JsonNode ref, String what) throws IOException {
            long at = ref.path("at").asLong(-1);
            long len = ref.path("len").asLong(-1);
            if (at < 0 || len < 0 || blobAt + at + len > frame.length) {
                throw new IOException(what + " points outside the frame");
            }
            return new int[] {(int) (blobAt + at), (int) len};
        }

        /** A heap copy, for issuer state (the issuer's own format); the receiver wipes it after use. */
        byte[] bytes(JsonNode ref) throws IOException {
            int[] r = range(ref, "issuer state");
            return Arrays.copyOfRange(frame, r[0], r[0] + r[1]);
        }

        Secret secret(JsonNode ref) throws IOException {
            int[] r = range(ref, "a secret");
            Secret s = Secret.copyOf(frame, r[0], r[1]);
            made.add(s);
            return s;
        }

        Lease lease(JsonNode o) throws IOException {
            IssuedKey k = new IssuedKey(secret(object(o, "secret")), Instant.parse(text(o, "expiresAt")),
                    text(o, "leaseId"), io.keywarden.delivery.Header.parse(text(o, "headers")));
            return new Lease(k, Instant.parse(text(o, "issuedAt")), bool(o, "renewable"),
                    Optional.ofNullable(o.hasNonNull("providerKeyId") ? o.get("providerKeyId").asText() : null),
                    text(o, "issuer"), bool(o, "revocable"),
                    // Optional in format 2: absent when the provider puts no expiry on the key.
                    Optional.ofNullable(o.hasNonNull("providerExpiresAt")
                            ? Instant.parse(o.get("providerExpiresAt").asText()) : null));
        }
    }
}
