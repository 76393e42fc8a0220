package io.keywarden.attestation.spire;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioDomainSocketChannel;
import io.keywarden.attestation.IdentityException;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.attestation.spire.proto.DelegatedIdentityGrpc;
import io.keywarden.attestation.spire.proto.FetchJWTSVIDsRequest;
import io.keywarden.attestation.spire.proto.FetchJWTSVIDsResponse;
import io.keywarden.attestation.spire.proto.types.JWTSVID;
import io.keywarden.policy.SpiffeId;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The SPIRE agent's Delegated Identity API on its admin Unix socket: JWT-SVIDs by PID. The gRPC
 * channel reconnects by itself with backoff when the agent restarts; after a failure the backoff
 * is reset so that the next attestation tries at once.
 */
public final class DelegatedIdentityClient implements AutoCloseable {
    private final Path socket;
    private final EventLoopGroup group;
    private final ManagedChannel channel;
    private final Duration deadline;

    /** The agent's admin socket this client talks to. */
    public Path socket() {
        return socket;
    }

    public DelegatedIdentityClient(Path socket, Duration deadline) {
        this.socket = socket;
        this.deadline = deadline;
        AtomicInteger n = new AtomicInteger();
        // Netty's NIO transport speaks AF_UNIX through the JDK (16+): no native library, and the
        // same Netty as Vert.x's (one copy in the jar).
        this.group = new MultiThreadIoEventLoopGroup(1, r -> {
            Thread t = new Thread(r, "spire-client-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        }, NioIoHandler.newFactory());
        // A valid HTTP/2 :authority: grpc-java's default for a Unix socket is its path, which
        // strict HTTP/2 peers refuse (RST_STREAM PROTOCOL_ERROR); grpc-go tolerates either.
        this.channel = NettyChannelBuilder.forAddress(java.net.UnixDomainSocketAddress.of(socket))
                .overrideAuthority("localhost")
                .eventLoopGroup(group).channelType(NioDomainSocketChannel.class).usePlaintext().build();
    }

    /** Every JWT-SVID the agent issues for {@code pid} (one per matching registration entry). */
    public List<JwtSvid> fetchJwtSvids(int pid, List<String> audience) throws IdentityException {
        if (pid <= 0) {
            throw new IdentityException("cannot attest pid " + pid + " with SPIRE", false);
        }
        return fetch(FetchJWTSVIDsRequest.newBuilder().addAllAudience(audience).setPid(pid).build(), "pid " + pid);
    }

    /**
     * The JWT-SVIDs of the registration entries whose selectors are all among {@code selectors}
     * (each {@code type:value}, as SPIRE writes them: {@code unix:uid:1001} is type {@code unix},
     * value {@code uid:1001}) — for a workload with no local process, e.g. a remote mTLS caller.
     */
    public List<JwtSvid> fetchJwtSvidsForSelectors(List<String> selectors, List<String> audience) throws IdentityException {
        FetchJWTSVIDsRequest.Builder b = FetchJWTSVIDsRequest.newBuilder().addAllAudience(audience);
        for (String sel : selectors) {
            int colon = sel.indexOf(':');
            if (colon <= 0) {
                throw new IdentityException("'" + sel + "' is not a SPIRE selector (type:value)", false);
            }
            b.addSelectors(io.keywarden.attestation.spire.proto.types.Selector.newBuilder()
                    .setType(sel.substring(0, colon)).setValue(sel.substring(colon + 1)));
        }
        return fetch(b.build(), "selectors " + String.join(" ", selectors));
    }

    private List<JwtSvid> fetch(FetchJWTSVIDsRequest req, String pid) throws IdentityException {
        FetchJWTSVIDsResponse resp = null;
        io.grpc.Deadline until = io.grpc.Deadline.after(deadline.toMillis(), TimeUnit.MILLISECONDS);
        // After an agent restart the first call may meet the old, dead connection: one more try on
        // a fresh connection, within the same deadline, before giving up.
        Status first = null;
        for (int attempt = 1; resp == null; attempt++) {
            try {
                var stub = DelegatedIdentityGrpc.newBlockingStub(channel).withDeadline(until);
                // The retry waits (within the deadline) for the new connection to be ready.
                resp = (attempt == 1 ? stub : stub.withWaitForReady()).fetchJWTSVIDs(req);
            } catch (StatusRuntimeException e) {
                channel.resetConnectBackoff();
                if (attempt >= 2 || e.getStatus().getCode() != Status.Code.UNAVAILABLE || until.isExpired()) {
                    throw classify(first != null && e.getStatus().getCode() == Status.Code.DEADLINE_EXCEEDED ? first
                            : e.getStatus(), pid);
                }
                first = e.getStatus();
            }
        }
        List<JwtSvid> out = new ArrayList<>();
        for (JWTSVID s : resp.getSvidsList()) {
            SpiffeId id;
            try {
                id = new SpiffeId(s.getId().getTrustDomain(), s.getId().getPath());
            } catch (IllegalArgumentException e) {
                throw new IdentityException("SPIRE agent returned an invalid SPIFFE ID for " + pid + ": "
                        + e.getMessage(), false);
            }
            if (s.getToken().isEmpty() || s.getExpiresAt() <= 0) {
                throw new IdentityException("SPIRE agent returned a JWT-SVID without token or expiry for " + id, true);
            }
            out.add(new JwtSvid(id, s.getToken(), Instant.ofEpochSecond(s.getIssuedAt()), Instant.ofEpochSecond(s.getExpiresAt())));
        }
        return out;
    }

    private IdentityException classify(Status st, String pid) {
        String why = st.getDescription() == null ? "" : ": " + st.getDescription();
        return switch (st.getCode()) {
            case PERMISSION_DENIED -> new IdentityException("SPIRE agent denied " + pid + why
                    + " (keywarden is not an authorized delegate, or no registration entry matches the process)", false);
            case INVALID_ARGUMENT -> new IdentityException("SPIRE agent rejected the request for " + pid + why, false);
            case UNAVAILABLE -> new IdentityException("SPIRE agent unavailable at " + socket + why, true);
            case DEADLINE_EXCEEDED -> new IdentityException("SPIRE agent did not answer within " + deadline.toMillis()
                    + " ms", true);
            case UNIMPLEMENTED -> new IdentityException("SPIRE agent at " + socket + " has no Delegated Identity API"
                    + " (admin_socket_path must point at the admin socket; SPIRE >= 1.10.2)", false);
            default -> new IdentityException("SPIRE agent failed for " + pid + ": " + st.getCode() + why, true);
        };
    }

    @Override
    public void close() {
        channel.shutdownNow();
        try {
            channel.awaitTermination(2, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }
}
