package io.keywarden.daemon.csi;

import com.google.protobuf.BoolValue;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.keywarden.daemon.csi.proto.GetPluginCapabilitiesRequest;
import io.keywarden.daemon.csi.proto.GetPluginCapabilitiesResponse;
import io.keywarden.daemon.csi.proto.GetPluginInfoRequest;
import io.keywarden.daemon.csi.proto.GetPluginInfoResponse;
import io.keywarden.daemon.csi.proto.IdentityGrpc;
import io.keywarden.daemon.csi.proto.NodeGetCapabilitiesRequest;
import io.keywarden.daemon.csi.proto.NodeGetCapabilitiesResponse;
import io.keywarden.daemon.csi.proto.NodeGetInfoRequest;
import io.keywarden.daemon.csi.proto.NodeGetInfoResponse;
import io.keywarden.daemon.csi.proto.NodeGrpc;
import io.keywarden.daemon.csi.proto.NodePublishVolumeRequest;
import io.keywarden.daemon.csi.proto.NodePublishVolumeResponse;
import io.keywarden.daemon.csi.proto.NodeUnpublishVolumeRequest;
import io.keywarden.daemon.csi.proto.NodeUnpublishVolumeResponse;
import io.keywarden.daemon.csi.proto.ProbeRequest;
import io.keywarden.daemon.csi.proto.ProbeResponse;
import io.keywarden.linux.LibC;
import io.keywarden.linux.Mounts;
import io.keywarden.linux.NativeException;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerDomainSocketChannel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The CSI node plugin {@code csi.keywarden.io}, served by the daemon on {@code csi.socket}: Identity
 * and Node services only (no Controller), ephemeral inline volumes, read-only. Publishing
 * bind-mounts the KeyFS mount onto the pod's target path (read-only, nosuid, nodev, noexec); every
 * {@code open()} under it is still decided per process by KeyFS. Unpublishing unmounts and removes
 * the target, and succeeds when it is already gone. With {@code podInfoOnMount} the pod (namespace,
 * name, uid, service account) is recorded and its workload's keys issued ahead of the first read.
 *
 * <p>Threads: gRPC's own ({@code csi-N}); a publish's mount syscalls run there.
 */
public final class CsiServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CsiServer.class);
    public static final String NAME = "csi.keywarden.io";
    static final String EPHEMERAL = "csi.storage.k8s.io/ephemeral";
    static final String POD_NAME = "csi.storage.k8s.io/pod.name";
    static final String POD_NAMESPACE = "csi.storage.k8s.io/pod.namespace";
    static final String POD_UID = "csi.storage.k8s.io/pod.uid";
    static final String POD_SA = "csi.storage.k8s.io/serviceAccount.name";
    private static final long BIND = 4096;      // MS_BIND
    private static final long REMOUNT = 32;     // MS_REMOUNT
    private static final long RDONLY = 1;       // MS_RDONLY

    /** What a publish tells the rest of the daemon (the ledger; pre-issuance for the pod's workload). */
    public interface Listener {
        void published(String volumeId, Path target, Map<String, String> pod);

        void unpublished(String volumeId, Path target);
    }

    private final Path source;
    private final String nodeId;
    private final String version;
    private final BooleanSupplier ready;
    private final Listener listener;
    private final Path socket;
    private EventLoopGroup boss;
    private EventLoopGroup workers;
    private Server server;

    private CsiServer(Path socket, Path source, String nodeId, String version, BooleanSupplier ready, Listener listener) {
        this.socket = socket;
        this.source = source;
        this.nodeId = nodeId;
        this.version = version;
        this.ready = ready;
        this.listener = listener;
    }

    /** Listens on {@code socket} (0600; its directory created 0750 if missing); publishes bind {@code source}. */
    public static CsiServer start(Path socket, Path source, String nodeId, String version, BooleanSupplier ready,
                                  Listener listener) throws IOException {
        CsiServer s = new CsiServer(socket, source, nodeId, version, ready, listener);
        io.keywarden.linux.SafePaths.directory(socket.toAbsolutePath().getParent(),
                PosixFilePermissions.fromString("rwxr-x---"), "the CSI socket " + socket);
        java.util.concurrent.atomic.AtomicInteger n = new java.util.concurrent.atomic.AtomicInteger();
        java.util.concurrent.ThreadFactory acceptor = r -> daemon(r, "csi-accept");
        java.util.concurrent.ThreadFactory worker = r -> daemon(r, "csi-" + n.incrementAndGet());
        s.boss = new MultiThreadIoEventLoopGroup(1, acceptor, NioIoHandler.newFactory());
        s.workers = new MultiThreadIoEventLoopGroup(2, worker, NioIoHandler.newFactory());
        try {
            io.keywarden.linux.SafePaths.placeSocket(socket, PosixFilePermissions.fromString("rw-------"),
                    "the CSI socket " + socket, at -> s.server = NettyServerBuilder
                            .forAddress(java.net.UnixDomainSocketAddress.of(at))
                            .channelType(NioServerDomainSocketChannel.class).bossEventLoopGroup(s.boss)
                            .workerEventLoopGroup(s.workers).addService(s.new Identity()).addService(s.new Node()).build()
                            .start());
        } catch (IOException | RuntimeException e) {
            s.close();
            throw new IOException("cannot serve CSI on " + socket + ": " + e.getMessage(), e);
        }
        LOG.info("CSI node plugin {} on {} (node {})", NAME, socket, nodeId);
        return s;
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    final class Identity extends IdentityGrpc.IdentityImplBase {
        @Override
        public void getPluginInfo(GetPluginInfoRequest req, StreamObserver<GetPluginInfoResponse> out) {
            out.onNext(GetPluginInfoResponse.newBuilder().setName(NAME).setVendorVersion(version).build());
            out.onCompleted();
        }

        @Override
        public void getPluginCapabilities(GetPluginCapabilitiesRequest req, StreamObserver<GetPluginCapabilitiesResponse> out) {
            // Node only: no CONTROLLER_SERVICE, no topology.
            out.onNext(GetPluginCapabilitiesResponse.getDefaultInstance());
            out.onCompleted();
        }

        @Override
        public void probe(ProbeRequest req, StreamObserver<ProbeResponse> out) {
            out.onNext(ProbeResponse.newBuilder().setReady(BoolValue.of(ready.getAsBoolean())).build());
            out.onCompleted();
        }
    }

    final class Node extends NodeGrpc.NodeImplBase {
        @Override
        public void nodeGetCapabilities(NodeGetCapabilitiesRequest req, StreamObserver<NodeGetCapabilitiesResponse> out) {
            out.onNext(NodeGetCapabilitiesResponse.getDefaultInstance());
            out.onCompleted();
        }

        @Override
        public void nodeGetInfo(NodeGetInfoRequest req, StreamObserver<NodeGetInfoResponse> out) {
            out.onNext(NodeGetInfoResponse.newBuilder().setNodeId(nodeId).build());
            out.onCompleted();
        }

        @Override
        public void nodePublishVolume(NodePublishVolumeRequest req, StreamObserver<NodePublishVolumeResponse> out) {
            try {
                publish(req);
                out.onNext(NodePublishVolumeResponse.getDefaultInstance());
                out.onCompleted();
            } catch (io.grpc.StatusRuntimeException e) {
                out.onError(e);
            }
        }

        @Override
        public void nodeUnpublishVolume(NodeUnpublishVolumeRequest req, StreamObserver<NodeUnpublishVolumeResponse> out) {
            try {
                unpublish(req);
                out.onNext(NodeUnpublishVolumeResponse.getDefaultInstance());
                out.onCompleted();
            } catch (io.grpc.StatusRuntimeException e) {
                out.onError(e);
            }
        }
    }

    private static io.grpc.StatusRuntimeException invalid(String why) {
        return Status.INVALID_ARGUMENT.withDescription(why).asRuntimeException();
    }

    synchronized void publish(NodePublishVolumeRequest req) {
        if (req.getVolumeId().isEmpty()) {
            throw invalid("volume_id is required");
        }
        if (req.getTargetPath().isEmpty()) {
            throw invalid("target_path is required");
        }
        if (!req.hasVolumeCapability()) {
            throw invalid("volume_capability is required");
        }
        if (!req.getVolumeCapability().hasMount()) {
            throw invalid("only mount volumes are served (not block)");
        }
        Map<String, String> ctx = req.getVolumeContextMap();
        if (ctx.containsKey(EPHEMERAL) && !"true".equals(ctx.get(EPHEMERAL))) {
            throw invalid(NAME + " serves ephemeral inline volumes only");
        }
        Path target = Path.of(req.getTargetPath());
        if (!target.isAbsolute()) {
            throw invalid("target_path must be absolute");
        }
        try {
            Optional<Mounts.Mount> there = Mounts.at(target);
            if (there.isPresent()) {
                return; // published already (idempotent): the same bind of the same mount
            }
            Files.createDirectories(target, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-x---")));
            Mounts.mount(source.toString(), target, null, BIND, null);
            try {
                Mounts.mount(source.toString(), target, null, BIND | REMOUNT | RDONLY | LibC.MS_NOSUID | LibC.MS_NODEV
                        | LibC.MS_NOEXEC, null);
            } catch (NativeException e) {
                Mounts.detach(target);
                throw e;
            }
        } catch (IOException e) {
            throw Status.INTERNAL.withDescription("cannot publish at " + target + ": " + e.getMessage()).asRuntimeException();
        }
        Map<String, String> pod = new LinkedHashMap<>();
        for (String k : new String[] {POD_NAMESPACE, POD_NAME, POD_UID, POD_SA}) {
            if (ctx.containsKey(k)) {
                pod.put(k.substring(k.lastIndexOf('/') + 1), ctx.get(k));
            }
        }
        LOG.info("CSI: published {} at {}{}", req.getVolumeId(), target, pod.isEmpty() ? "" : " for pod " + pod);
        listener.published(req.getVolumeId(), target, pod);
    }

    synchronized void unpublish(NodeUnpublishVolumeRequest req) {
        if (req.getVolumeId().isEmpty()) {
            throw invalid("volume_id is required");
        }
        if (req.getTargetPath().isEmpty()) {
            throw invalid("target_path is required");
        }
        Path target = Path.of(req.getTargetPath());
        try {
            while (Mounts.at(target).isPresent()) {
                Mounts.detach(target);
            }
            Files.deleteIfExists(target);
        } catch (IOException e) {
            throw Status.INTERNAL.withDescription("cannot unpublish " + target + ": " + e.getMessage()).asRuntimeException();
        }
        listener.unpublished(req.getVolumeId(), target);
    }

    @Override
    public void close() {
        if (server != null) {
            server.shutdownNow();
            try {
                server.awaitTermination(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (boss != null) {
            boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            workers.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            LOG.debug("cannot remove {}: {}", socket, e.toString());
        }
    }
}
