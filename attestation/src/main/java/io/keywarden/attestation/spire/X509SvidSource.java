package io.keywarden.attestation.spire;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.keywarden.attestation.spire.workload.SpiffeWorkloadAPIGrpc;
import io.keywarden.attestation.spire.workload.X509SVID;
import io.keywarden.attestation.spire.workload.X509SVIDRequest;
import io.keywarden.attestation.spire.workload.X509SVIDResponse;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioDomainSocketChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.io.ByteArrayInputStream;
import java.net.Socket;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * keywarden's own X.509-SVID and its trust domain's bundle, streamed from the SPIRE agent's
 * Workload API ({@code FetchX509SVID}, with the {@code workload.spiffe.io: true} header), kept
 * current as SPIRE rotates them, and offered as a key manager (our SVID) and a trust manager (the
 * bundle; the peer must present an X.509-SVID: one {@code spiffe://} URI SAN, a chain to the
 * bundle, no hostname check) for mutual TLS.
 *
 * <p>Not java-spiffe's {@code X509Source}: its Workload API client needs {@code grpc-netty-linux},
 * which brings the shaded second Netty this jar dropped (38.7 → 28.3 MB, issue 14); this speaks the
 * same API over the one Netty, as the Delegated Identity client does. The SVID's private key is a
 * JCA {@code PrivateKey} (on the heap): the TLS stack wants one.
 */
public final class X509SvidSource implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(X509SvidSource.class);
    private static final Metadata.Key<String> WORKLOAD = Metadata.Key.of("workload.spiffe.io", Metadata.ASCII_STRING_MARSHALLER);

    /** One SVID with its bundle. */
    public record Svid(String spiffeId, List<X509Certificate> chain, PrivateKey key, List<X509Certificate> bundle) {
    }

    private final EventLoopGroup group;
    private final ManagedChannel channel;
    private final CountDownLatch first = new CountDownLatch(1);
    private volatile Svid current;
    private volatile String lastError = "no answer from the Workload API yet";
    private volatile boolean closed;

    public X509SvidSource(Path socket) {
        AtomicInteger n = new AtomicInteger();
        this.group = new MultiThreadIoEventLoopGroup(1, r -> {
            Thread t = new Thread(r, "spire-workload-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        }, NioIoHandler.newFactory());
        this.channel = NettyChannelBuilder.forAddress(java.net.UnixDomainSocketAddress.of(socket))
                .overrideAuthority("localhost").eventLoopGroup(group).channelType(NioDomainSocketChannel.class)
                .usePlaintext().build();
        subscribe();
    }

    /** The socket path of a {@code unix:///path} Workload API address. */
    public static Path socketOf(String address) {
        if (!address.startsWith("unix://")) {
            throw new IllegalArgumentException("'" + address + "' is not a unix:///path Workload API address");
        }
        return Path.of(address.substring("unix://".length()));
    }

    private void subscribe() {
        if (closed) {
            return;
        }
        Metadata md = new Metadata();
        md.put(WORKLOAD, "true");
        SpiffeWorkloadAPIGrpc.newStub(channel).withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md))
                .withWaitForReady().fetchX509SVID(X509SVIDRequest.getDefaultInstance(), new StreamObserver<>() {
                    @Override
                    public void onNext(X509SVIDResponse r) {
                        try {
                            current = parse(r);
                            lastError = null;
                            first.countDown();
                            LOG.info("X.509-SVID {} (expires {})", current.spiffeId(),
                                    current.chain().get(0).getNotAfter().toInstant());
                        } catch (GeneralSecurityException | IllegalArgumentException e) {
                            lastError = "the Workload API's X.509-SVID is unusable: " + e.getMessage();
                            LOG.warn("{}", lastError);
                        }
                    }

                    @Override
                    public void onError(Throwable t) {
                        lastError = "the Workload API stream failed: " + io.grpc.Status.fromThrowable(t);
                        if (!closed) {
                            LOG.warn("{}; retrying in 1 s", lastError);
                            group.schedule(X509SvidSource.this::subscribe, 1, TimeUnit.SECONDS);
                        }
                    }

                    @Override
                    public void onCompleted() {
                        onError(new IllegalStateException("stream ended"));
                    }
                });
    }

    static Svid parse(X509SVIDResponse r) throws GeneralSecurityException {
        if (r.getSvidsCount() == 0) {
            throw new IllegalArgumentException("no SVID in the answer");
        }
        X509SVID s = r.getSvids(0);
        List<X509Certificate> chain = certificates(s.getX509Svid());
        List<X509Certificate> bundle = certificates(s.getBundle());
        if (chain.isEmpty() || bundle.isEmpty() || s.getX509SvidKey().isEmpty()) {
            throw new IllegalArgumentException("an empty certificate chain, bundle or key");
        }
        byte[] der = s.getX509SvidKey().toByteArray();
        PrivateKey key;
        try {
            String alg = chain.get(0).getPublicKey().getAlgorithm();
            key = KeyFactory.getInstance(alg).generatePrivate(new PKCS8EncodedKeySpec(der));
        } finally {
            java.util.Arrays.fill(der, (byte) 0);
        }
        String id = spiffeIdOf(chain.get(0)).orElseThrow(() -> new IllegalArgumentException(
                "the SVID has no spiffe:// URI SAN"));
        return new Svid(id, chain, key, bundle);
    }

    private static List<X509Certificate> certificates(ByteString der) throws CertificateException {
        List<X509Certificate> out = new ArrayList<>();
        for (var c : CertificateFactory.getInstance("X.509").generateCertificates(new ByteArrayInputStream(der.toByteArray()))) {
            out.add((X509Certificate) c);
        }
        return out;
    }

    /** The single {@code spiffe://} URI SAN of {@code cert}, if it has exactly one. */
    public static Optional<String> spiffeIdOf(X509Certificate cert) {
        try {
            Collection<List<?>> sans = cert.getSubjectAlternativeNames();
            if (sans == null) {
                return Optional.empty();
            }
            List<String> uris = new ArrayList<>();
            for (List<?> san : sans) {
                if (Integer.valueOf(6).equals(san.get(0))) {
                    uris.add(String.valueOf(san.get(1)));
                }
            }
            return uris.size() == 1 && uris.get(0).startsWith("spiffe://") ? Optional.of(uris.get(0)) : Optional.empty();
        } catch (CertificateException e) {
            return Optional.empty();
        }
    }

    /** Waits for the first SVID; false when none came within {@code d}. */
    public boolean awaitFirst(Duration d) throws InterruptedException {
        return first.await(d.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** Why there is no usable SVID now, or empty. */
    public Optional<String> unavailable() {
        return current == null ? Optional.of(lastError) : Optional.empty();
    }

    public Optional<Svid> current() {
        return Optional.ofNullable(current);
    }

    /** Presents the current SVID (rotations included) as this side's certificate. */
    public X509ExtendedKeyManager keyManager() {
        return new X509ExtendedKeyManager() {
            @Override
            public String[] getClientAliases(String keyType, Principal[] issuers) {
                return current == null ? new String[0] : new String[] {"svid"};
            }

            @Override
            public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
                return current == null ? null : "svid";
            }

            @Override
            public String[] getServerAliases(String keyType, Principal[] issuers) {
                return getClientAliases(keyType, issuers);
            }

            @Override
            public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
                return current == null ? null : "svid";
            }

            @Override
            public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
                return current == null ? null : "svid";
            }

            @Override
            public String chooseEngineClientAlias(String[] keyType, Principal[] issuers, SSLEngine engine) {
                return current == null ? null : "svid";
            }

            @Override
            public X509Certificate[] getCertificateChain(String alias) {
                Svid s = current;
                return s == null ? null : s.chain().toArray(new X509Certificate[0]);
            }

            @Override
            public PrivateKey getPrivateKey(String alias) {
                Svid s = current;
                return s == null ? null : s.key();
            }
        };
    }

    /** Accepts a peer that presents an X.509-SVID chaining to the current bundle. */
    public X509ExtendedTrustManager trustManager() {
        return new X509ExtendedTrustManager() {
            private void check(X509Certificate[] chain) throws CertificateException {
                Svid s = current;
                if (s == null) {
                    throw new CertificateException("no trust bundle from the Workload API yet");
                }
                verify(chain, s.bundle());
            }

            @Override
            public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
                check(chain);
            }

            @Override
            public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
                check(chain);
            }

            @Override
            public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
                    throws CertificateException {
                check(chain);
            }

            @Override
            public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
                    throws CertificateException {
                check(chain);
            }

            @Override
            public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                    throws CertificateException {
                check(chain);
            }

            @Override
            public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                    throws CertificateException {
                check(chain);
            }

            @Override
            public X509Certificate[] getAcceptedIssuers() {
                Svid s = current;
                return s == null ? new X509Certificate[0] : s.bundle().toArray(new X509Certificate[0]);
            }
        };
    }

    /** PKIX from the leaf to one of {@code roots} (no revocation, no hostname), and a SPIFFE ID on the leaf. */
    static void verify(X509Certificate[] chain, List<X509Certificate> roots) throws CertificateException {
        if (chain == null || chain.length == 0) {
            throw new CertificateException("no certificate presented");
        }
        if (spiffeIdOf(chain[0]).isEmpty()) {
            throw new CertificateException("the peer's certificate is not an X.509-SVID (one spiffe:// URI SAN)");
        }
        try {
            Set<TrustAnchor> anchors = new HashSet<>();
            for (X509Certificate r : roots) {
                anchors.add(new TrustAnchor(r, null));
            }
            PKIXParameters p = new PKIXParameters(anchors);
            p.setRevocationEnabled(false);
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            CertPathValidator.getInstance("PKIX").validate(cf.generateCertPath(List.of(chain)), p);
        } catch (GeneralSecurityException e) {
            throw new CertificateException("the peer's SVID does not chain to the trust bundle: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        closed = true;
        channel.shutdownNow();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    }
}
