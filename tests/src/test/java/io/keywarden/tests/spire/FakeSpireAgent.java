package io.keywarden.tests.spire;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSObject;
import com.nimbusds.jose.Payload;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerDomainSocketChannel;
import io.grpc.stub.StreamObserver;
import io.keywarden.attestation.spire.proto.DelegatedIdentityGrpc;
import io.keywarden.attestation.spire.proto.FetchJWTSVIDsRequest;
import io.keywarden.attestation.spire.proto.FetchJWTSVIDsResponse;
import io.keywarden.attestation.spire.proto.types.JWTSVID;
import io.keywarden.attestation.spire.proto.types.SPIFFEID;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A SPIRE agent's Delegated Identity API for tests: the real gRPC protocol on a Unix socket. It
 * attests the PID it is given from /proc (its uid) against a registration table, signs real
 * ES256 JWT-SVIDs as SPIRE does (sub, aud array, iat, exp, kid), and fails on demand in each
 * documented way.
 */
public final class FakeSpireAgent implements AutoCloseable {
    public enum Mode { NORMAL, NOT_A_DELEGATE, UNAVAILABLE }

    private record Entry(String path, int uid) {
    }

    private final Path socket;
    private final String trustDomain;
    private final List<Entry> entries = new CopyOnWriteArrayList<>();
    private final ECKey key;
    public final AtomicInteger calls = new AtomicInteger();
    public volatile Mode mode = Mode.NORMAL;
    public volatile Duration delay = Duration.ZERO;
    public volatile Duration svidTtl = Duration.ofMinutes(5);
    private Server server;
    private EventLoopGroup boss;
    private EventLoopGroup workers;

    public FakeSpireAgent(Path socket, String trustDomain) {
        this.socket = socket;
        this.trustDomain = trustDomain;
        try {
            this.key = new ECKeyGenerator(Curve.P_256).keyID(UUID.randomUUID().toString()).generate();
        } catch (JOSEException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A registration entry: processes of {@code uid} get {@code spiffe://<td><path>}. */
    public FakeSpireAgent register(String path, int uid) {
        entries.add(new Entry(path, uid));
        return this;
    }

    public String jwksJson() {
        return new JWKSet(key.toPublicJWK()).toString(true);
    }

    public synchronized FakeSpireAgent start() throws IOException {
        Files.deleteIfExists(socket);
        boss = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
        workers = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
        server = NettyServerBuilder.forAddress(java.net.UnixDomainSocketAddress.of(socket))
                .channelType(NioServerDomainSocketChannel.class).bossEventLoopGroup(boss).workerEventLoopGroup(workers)
                .addService(io.grpc.ServerInterceptors.intercept(new Service(), new StrictAuthority())).build().start();
        return this;
    }

    /** Stops as an agent does on restart: the socket goes away. */
    public synchronized void stop() {
        if (server != null) {
            server.shutdownNow();
            try {
                server.awaitTermination(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            boss.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            workers.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            server = null;
        }
        try {
            Files.deleteIfExists(socket);
        } catch (IOException e) {
            // the socket file is left; start() removes it
        }
    }

    @Override
    public void close() {
        stop();
    }

    private static int uidOf(int pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Integer.toString(pid), "status"))) {
                if (line.startsWith("Uid:")) {
                    return Integer.parseInt(line.substring(4).trim().split("\\s+")[0]);
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /**
     * As the real agent: one JWT-SVID per (SPIFFE ID, audiences) is cached and handed out again
     * until half its life has passed; stock SVIDs carry no {@code jti}.
     */
    private final Map<String, JWTSVID> svidCache = new java.util.concurrent.ConcurrentHashMap<>();

    private JWTSVID cachedOrNew(String path, List<String> audience) throws JOSEException {
        List<String> sorted = new ArrayList<>(audience);
        java.util.Collections.sort(sorted);
        String k = path + " " + sorted;
        Instant now = Instant.now();
        JWTSVID c = svidCache.get(k);
        if (c != null && now.getEpochSecond() < c.getIssuedAt() + (c.getExpiresAt() - c.getIssuedAt()) / 2) {
            return c;
        }
        Instant exp = now.plus(svidTtl);
        JWTSVID n = JWTSVID.newBuilder().setToken(sign("spiffe://" + trustDomain + path, audience, now, exp))
                .setId(SPIFFEID.newBuilder().setTrustDomain(trustDomain).setPath(path))
                .setIssuedAt(now.getEpochSecond()).setExpiresAt(exp.getEpochSecond()).build();
        svidCache.put(k, n);
        return n;
    }

    private String sign(String spiffeId, List<String> audience, Instant iat, Instant exp) throws JOSEException {
        Map<String, Object> claims = new LinkedHashMap<>();
        claims.put("sub", spiffeId);
        claims.put("aud", audience);
        claims.put("iat", iat.getEpochSecond());
        claims.put("exp", exp.getEpochSecond());
        JWSObject jws = new JWSObject(new JWSHeader.Builder(JWSAlgorithm.ES256).keyID(key.getKeyID())
                .type(JOSEObjectType.JWT).build(), new Payload(claims));
        jws.sign(new ECDSASigner(key));
        return jws.serialize();
    }

    private final class Service extends DelegatedIdentityGrpc.DelegatedIdentityImplBase {
        @Override
        public void fetchJWTSVIDs(FetchJWTSVIDsRequest req, StreamObserver<FetchJWTSVIDsResponse> out) {
            calls.incrementAndGet();
            try {
                if (!delay.isZero()) {
                    Thread.sleep(delay.toMillis());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            switch (mode) {
                case NOT_A_DELEGATE -> {
                    out.onError(Status.PERMISSION_DENIED.withDescription("caller is not authorized").asRuntimeException());
                    return;
                }
                case UNAVAILABLE -> {
                    out.onError(Status.UNAVAILABLE.withDescription("could not mint JWT-SVID").asRuntimeException());
                    return;
                }
                default -> {
                }
            }
            if (req.getAudienceCount() == 0) {
                out.onError(Status.INVALID_ARGUMENT.withDescription("audience must be specified").asRuntimeException());
                return;
            }
            boolean hasPid = req.getPid() != 0;
            boolean hasSelectors = req.getSelectorsCount() > 0;
            if (hasPid == hasSelectors) {
                out.onError(Status.INVALID_ARGUMENT.withDescription("exactly one of selectors or pid must be set")
                        .asRuntimeException());
                return;
            }
            int uid = uidOf(req.getPid());
            List<JWTSVID> svids = new ArrayList<>();
            try {
                for (Entry e : entries) {
                    if (e.uid() == uid) {
                        svids.add(cachedOrNew(e.path(), req.getAudienceList()));
                    }
                }
            } catch (JOSEException e) {
                out.onError(Status.UNAVAILABLE.withDescription("could not sign").asRuntimeException());
                return;
            }
            if (svids.isEmpty()) {
                out.onError(Status.PERMISSION_DENIED.withDescription("no identity issued").asRuntimeException());
                return;
            }
            out.onNext(FetchJWTSVIDsResponse.newBuilder().addAllSvids(svids).build());
            out.onCompleted();
        }
    }

    /**
     * As strict as a strict HTTP/2 peer: an {@code :authority} that is not a host[:port] (e.g. a
     * socket path, grpc-java's default over a Unix socket) gets the stream reset, which a client
     * sees as INTERNAL. grpc-go (the real agent) tolerates it; other peers do not.
     */
    static final class StrictAuthority implements io.grpc.ServerInterceptor {
        static final java.util.regex.Pattern HOST = java.util.regex.Pattern.compile("[A-Za-z0-9.-]+(:[0-9]+)?");

        @Override
        public <Q, R> io.grpc.ServerCall.Listener<Q> interceptCall(io.grpc.ServerCall<Q, R> call, io.grpc.Metadata headers,
                                                                 io.grpc.ServerCallHandler<Q, R> next) {
            String authority = call.getAuthority();
            if (authority == null || !HOST.matcher(authority).matches()) {
                call.close(io.grpc.Status.INTERNAL.withDescription("RST_STREAM PROTOCOL_ERROR: invalid :authority"),
                        new io.grpc.Metadata());
                return new io.grpc.ServerCall.Listener<>() {
                };
            }
            return next.startCall(call, headers);
        }
    }
}
