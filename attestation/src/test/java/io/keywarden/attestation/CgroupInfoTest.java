package io.keywarden.attestation;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Real-world /proc/PID/cgroup shapes (files under test resources). */
class CgroupInfoTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource(nullValues = "-", value = {
        "containerd-v2-systemd.txt, 0f3c2a1e-1111-2222-3333-444455556666, 8d3c5a2b7f1e4d6c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e1d2c",
        "containerd-v1-cgroupfs.txt, 7a1b2c3d-4e5f-6789-abcd-ef0123456789, 0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "crio-v2.txt, 5d6e7f80-9a0b-1c2d-3e4f-5a6b7c8d9e0f, f1e2d3c4b5a697887766554433221100ffeeddccbbaa99887766554433221100",
        "docker-v2.txt, -, 3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f",
        "docker-v1.txt, -, 3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f",
        "host-user-session.txt, -, -",
        "kind-nested.txt, 9a8b7c6d-5e4f-3a2b-1c0d-9e8f7a6b5c4d, 11223344556677889900aabbccddeeff11223344556677889900aabbccddeeff",
        // A user's delegated cgroup named like a pod: not the runtime's hierarchy, so no pod, no container.
        "delegated-spoof.txt, -, -",
        "nested-cgroupfs-spoof.txt, -, -",
    })
    void parses(String sample, String pod, String container) throws Exception {
        String text;
        try (InputStream in = getClass().getResourceAsStream("/cgroup/" + sample)) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        CgroupInfo c = CgroupInfo.parse(text);
        assertEquals(Optional.ofNullable(pod), c.podUid(), "pod of " + sample);
        assertEquals(Optional.ofNullable(container), c.containerId(), "container of " + sample);
    }

    @org.junit.jupiter.api.Test
    void aRuntimeLayoutInACgroupNotOwnedByRootNamesNothing() {
        String text = "0::/kubepods/besteffort/pod7a1b2c3d-4e5f-6789-abcd-ef0123456789\n";
        assertEquals(Optional.of("7a1b2c3d-4e5f-6789-abcd-ef0123456789"), CgroupInfo.parse(text, (c, p) -> true).podUid());
        assertEquals(CgroupInfo.NONE, CgroupInfo.parse(text, (c, p) -> false), "a user-owned directory vouches for nothing");
    }
}
