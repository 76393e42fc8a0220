package io.keywarden.daemon.issuer.federation;

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
import com.nimbusds.jose.jwk.KeyUse;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;

/**
 * keywarden's own signing key on this node, for OAuth {@code private_key_jwt} client
 * authentication (Okta): made at start, never written anywhere, its public half served as a JWKS
 * on {@code ops.listen} ({@link #PATH}) for the authorization server to fetch by {@code kid}.
 */
public final class NodeKey {
    public static final String PATH = "/.well-known/keywarden-client-jwks.json";
    static final Duration ASSERTION_TTL = Duration.ofMinutes(5);
    private final ECKey key;
    private final ECDSASigner signer;
    private final Clock clock;

    public NodeKey(Clock clock) {
        try {
            this.key = new ECKeyGenerator(Curve.P_256).keyUse(KeyUse.SIGNATURE).algorithm(JWSAlgorithm.ES256)
                    .keyID(UUID.randomUUID().toString()).generate();
            this.signer = new ECDSASigner(key);
        } catch (JOSEException e) {
            throw new IllegalStateException("cannot generate the node's P-256 client key", e);
        }
        this.clock = clock;
    }

    /** The public key, as the JWKS the authorization server fetches. */
    public String jwksJson() {
        return new JWKSet(key.toPublicJWK()).toString(true);
    }

    /**
     * A client assertion for {@code clientId} at {@code tokenUrl}: {@code iss} = {@code sub} = the
     * client id, {@code aud} the token endpoint, a unique {@code jti}, five minutes of life.
     */
    public String clientAssertion(String clientId, String tokenUrl) {
        Instant now = clock.instant().truncatedTo(ChronoUnit.SECONDS);
        Map<String, Object> claims = new LinkedHashMap<>();
        claims.put("iss", clientId);
        claims.put("sub", clientId);
        claims.put("aud", tokenUrl);
        claims.put("jti", UUID.randomUUID().toString());
        claims.put("iat", now.getEpochSecond());
        claims.put("exp", now.plus(ASSERTION_TTL).getEpochSecond());
        JWSObject jwt = new JWSObject(new JWSHeader.Builder(JWSAlgorithm.ES256).keyID(key.getKeyID())
                .type(JOSEObjectType.JWT).build(), new Payload(claims));
        try {
            jwt.sign(signer);
        } catch (JOSEException e) {
            throw new IllegalStateException("signing a client assertion failed", e);
        }
        return jwt.serialize();
    }
}
