package io.keywarden.tests.csi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.keywarden.daemon.csi.proto.GetPluginCapabilitiesRequest;
import io.keywarden.daemon.csi.proto.GetPluginInfoRequest;
import io.keywarden.daemon.csi.proto.IdentityGrpc;
import io.keywarden.daemon.csi.proto.NodeGetInfoRequest;
import io.keywarden.daemon.csi.proto.NodeGrpc;
import io.keywarden.daemon.csi.proto.NodePublishVolumeRequest;
import io.keywarden.daemon.csi.proto.NodeUnpublishVolumeRequest;
import io.keywarden.daemon.csi.proto.VolumeCapability;
import io.keywarden.linux.Mounts;
import io.keywarden.tests.support.Daemon;
import io.keywarden.tests.support.Ports;
import io.keywarden.tests.support.Proc;
import io.keywarden.tests.support.Requirements;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioDomainSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The CSI node plugin served by a real `keywarden dev`: publish and unpublish with real bind mounts
 * (a process of the right uid reads its key through the pod's target path, another uid gets EACCES
 * there too), the pod recorded and its workload's key issued at publish, idempotency, refusals —
 * and the CSI conformance suite, csi-sanity v5.5.0, against the same socket.
 */
class CsiIT {
    static Path dir;
    static Path mnt;
    static Path socket;
    static Path ledger;
    static Daemon daemon;
    static MultiThreadIoEventLoopGroup group;
    static ManagedChannel channel;

    @BeforeAll
    static void start() throws Exception {
        Requirements.rootAndFuse();
        dir = Files.createTempDirectory("kw-csi-");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        mnt = dir.resolve("kf");
        socket = dir.resolve("plugin/csi.sock");
        ledger = dir.resolve("audit.jsonl");
        Files.writeString(dir.resolve("policy.yaml"), """
                keys:
                  openai: {}
                workloads:
                  - name: reviewer
                    spiffeId: spiffe://example.org/ns/agents/sa/reviewer
                    selectors: [unix:uid:1001]
                    keys: [openai]
                """);
        daemon = Daemon.start(Map.of("NODE_NAME", "node-7"), "dev", "--mount", mnt.toString(), "--policy",
                dir.resolve("policy.yaml").toString(), "--audit", ledger.toString(), "--admin-socket",
                dir.resolve("admin.sock").toString(), "--listen", "127.0.0.1:" + Ports.free(), "--csi-socket",
                socket.toString());
        daemon.awaitOut("serving KeyFS", 30);
        group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        channel = NettyChannelBuilder.forAddress(java.net.UnixDomainSocketAddress.of(socket)).overrideAuthority("localhost")
                .eventLoopGroup(group).channelType(NioDomainSocketChannel.class).usePlaintext().build();
    }

    @AfterAll
    static void stop() throws Exception {
        if (channel != null) {
            channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
        if (daemon != null) {
            assertEquals(0, daemon.stop());
        }
        if (dir != null) {
            for (Mounts.Mount m : Mounts.list()) {
                if (m.mountPoint().startsWith(dir)) {
                    Mounts.detach(m.mountPoint());
                }
            }
            Proc.run("rm", "-rf", dir.toString());
        }
    }

    static NodePublishVolumeRequest publish(String volume, Path target, Map<String, String> context) {
        return NodePublishVolumeRequest.newBuilder().setVolumeId(volume).setTargetPath(target.toString())
                .setVolumeCapability(VolumeCapability.newBuilder().setMount(VolumeCapability.MountVolume.getDefaultInstance())
                        .setAccessMode(VolumeCapability.AccessMode.newBuilder()
                                .setMode(VolumeCapability.AccessMode.Mode.SINGLE_NODE_READER_ONLY)))
                .setReadonly(true).putAllVolumeContext(context).build();
    }

    @Test
    void identityAndNodeInfo() {
        var info = IdentityGrpc.newBlockingStub(channel).getPluginInfo(GetPluginInfoRequest.getDefaultInstance());
        assertEquals("csi.keywarden.io", info.getName());
        assertFalse(info.getVendorVersion().isEmpty());
        assertEquals(0, IdentityGrpc.newBlockingStub(channel).getPluginCapabilities(
                GetPluginCapabilitiesRequest.getDefaultInstance()).getCapabilitiesCount(), "no Controller service");
        assertEquals("node-7", NodeGrpc.newBlockingStub(channel).nodeGetInfo(NodeGetInfoRequest.getDefaultInstance())
                .getNodeId());
    }

    @Test
    void aPodsTargetServesItsWorkloadPerProcessAndUnpublishIsIdempotent() throws Exception {
        Path pods = Files.createDirectories(dir.resolve("pods/uid-1/volumes"));
        Proc.run("chmod", "-R", "755", dir.resolve("pods").toString());
        Path target = pods.resolve("keys");
        var node = NodeGrpc.newBlockingStub(channel);
        node.nodePublishVolume(publish("csi-1", target, Map.of("csi.storage.k8s.io/ephemeral", "true",
                "csi.storage.k8s.io/pod.namespace", "agents", "csi.storage.k8s.io/pod.name", "reviewer-0",
                "csi.storage.k8s.io/pod.uid", "3f7c0b8e-0000-4000-8000-000000000001",
                "csi.storage.k8s.io/serviceAccount.name", "reviewer")));
        String ledgerText = Files.readString(ledger);
        assertTrue(ledgerText.contains("\"event\":\"csi.published\"") && ledgerText.contains("\"pod.name\":\"reviewer-0\"")
                && ledgerText.contains("\"preissued\":[\"reviewer/openai\"]"), ledgerText);
        io.keywarden.testkit.Await.until(java.time.Duration.ofSeconds(10),
                () -> Files.readString(ledger).contains("\"event\":\"key.issued\""), () -> "the key issued at publish");
        Proc.Result mine = Proc.as(1001, "cat", target.resolve("openai/api_key").toString());
        assertTrue(mine.out().startsWith("sk-dev-"), "read through the pod's target: " + mine.err());
        Proc.Result other = Proc.as(1002, "cat", target.resolve("openai/api_key").toString());
        assertTrue(other.err().contains("Permission denied"), "another uid is refused there too: " + other.err());
        Proc.Result write = Proc.as(1001, "sh", "-c", "echo x > " + target.resolve("openai/new"));
        assertFalse(write.ok(), "read-only");
        Mounts.Mount m = Mounts.at(target).orElseThrow();
        assertEquals("fuse.keywarden", m.fsType());
        node.nodePublishVolume(publish("csi-1", target, Map.of("csi.storage.k8s.io/ephemeral", "true")));
        assertEquals(1, Mounts.list().stream().filter(x -> x.mountPoint().equals(target)).count(), "published once");

        node.nodeUnpublishVolume(NodeUnpublishVolumeRequest.newBuilder().setVolumeId("csi-1")
                .setTargetPath(target.toString()).build());
        assertTrue(Mounts.at(target).isEmpty() && !Files.exists(target), "unmounted and removed");
        node.nodeUnpublishVolume(NodeUnpublishVolumeRequest.newBuilder().setVolumeId("csi-1")
                .setTargetPath(target.toString()).build());
        assertTrue(Mounts.at(mnt).isPresent(), "the KeyFS mount itself is untouched");
        assertTrue(Files.readString(ledger).contains("\"event\":\"csi.unpublished\""));
    }

    @Test
    void badRequestsAreInvalidArguments() {
        var node = NodeGrpc.newBlockingStub(channel);
        Path t = dir.resolve("bad-target");
        StatusRuntimeException block = assertThrows(StatusRuntimeException.class, () -> node.nodePublishVolume(
                NodePublishVolumeRequest.newBuilder().setVolumeId("v").setTargetPath(t.toString()).setReadonly(true)
                        .setVolumeCapability(VolumeCapability.newBuilder().setBlock(
                                VolumeCapability.BlockVolume.getDefaultInstance())).build()));
        assertEquals(Status.Code.INVALID_ARGUMENT, block.getStatus().getCode());
        assertEquals(Status.Code.INVALID_ARGUMENT, assertThrows(StatusRuntimeException.class, () -> node.nodePublishVolume(
                publish("v", t, Map.of()).toBuilder().clearTargetPath().build())).getStatus().getCode());
        assertEquals(Status.Code.INVALID_ARGUMENT, assertThrows(StatusRuntimeException.class, () -> node.nodePublishVolume(
                publish("v", t, Map.of("csi.storage.k8s.io/ephemeral", "false")))).getStatus().getCode(),
                "persistent volumes are not served");
        assertFalse(Files.exists(t), "nothing created for a refused request");
    }

    @Test
    void csiSanityPassesWithTheControllerTestsSkipped() throws Exception {
        String env = System.getenv("KW_CSI_SANITY");
        Path bin = env != null ? Path.of(env)
                : Path.of(System.getProperty("user.home"), ".cache/keywarden/csi-sanity/v5.5.0/csi-sanity");
        assumeTrue(Files.isExecutable(bin), "csi-sanity is not installed at " + bin + " (.ci/run installs it: go install"
                + " github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@v5.5.0)");
        Proc.Result r = Proc.run(bin.toString(), "--csi.endpoint=unix://" + socket, "--csi.mountdir=" + dir.resolve("sanity-target"),
                "--csi.stagingdir=" + dir.resolve("sanity-staging"), "-ginkgo.no-color",
                // Controller tests: keywarden has no Controller service. "should remove target path" creates its volume
                // through the Controller service even for a node-only driver (v5.5.0); the test above covers it.
                "-ginkgo.skip=\\[Controller Server\\]|should remove target path");
        String summary = r.out().lines().filter(l -> l.contains("Passed") || l.startsWith("Ran ")).reduce("", (a, b) -> a + b + "\n");
        System.out.print("csi-sanity: " + summary);
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(summary.contains("0 Failed"), summary);
    }
}
