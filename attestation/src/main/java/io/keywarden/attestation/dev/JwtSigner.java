package io.keywarden.attestation.dev;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.KeyUse;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import com.nimbusds.jose.JWSObject;
import com.nimbusds.jose.Payload;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.policy.SpiffeId;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * Signs JWT-SVIDs as SPIRE would (ES256, {@code kid} header, {@code sub} = SPIFFE ID, {@code aud}
 * always an array, {@code iat}, {@code exp}) plus {@code iss}, with a P-256 key generated at start
 * that never leaves memory. Publishes the public key as a JWKS and an OIDC discovery document, so
 * a Vault/OpenBao JWT auth mount can trust it.
 */
public final class JwtSigner {
    public static final Duration SVID_TTL = Duration.ofMinutes(5);

    private final ECKey key;
    private final ECDSASigner signer;
    private final String issuer;
    private final List<String> audience;
    private final Clock clock;

    public JwtSigner(String issuer, List<String> audience, Clock clock) {
        this(issuer, audience, clock, generated());
    }

    /** Signs with {@code key}, a P-256 private key with a {@code kid} (kept across restarts: {@code dev --signing-key}). */
    public JwtSigner(String issuer, List<String> audience, Clock clock, ECKey key) {
        if (!key.isPrivate() || !Curve.P_256.equals(key.getCurve()) || key.getKeyID() == null) {
            throw new IllegalArgumentException("the signing key must be a P-256 private key with a kid");
        }
        this.key = key;
        try {
            this.signer = new ECDSASigner(key);
        } catch (JOSEException e) {
            throw new IllegalArgumentException("the signing key cannot sign: " + e.getMessage(), e);
        }
        this.issuer = issuer;
        this.audience = List.copyOf(audience);
        this.clock = clock;
    }

    private static ECKey generated() {
        try {
            return new ECKeyGenerator(Curve.P_256).keyUse(KeyUse.SIGNATURE).algorithm(JWSAlgorithm.ES256)
                    .keyID(UUID.randomUUID().toString()).generate();
        } catch (JOSEException e) {
            throw new IllegalStateException("cannot generate a P-256 signing key", e);
        }
    }

    public String issuer() {
        return issuer;
    }

    /** RSA key for audiences whose verifier takes RS256 only (Microsoft Entra); made on first need. */
    private volatile com.nimbusds.jose.jwk.RSAKey rsa;
    private final java.util.Set<String> rs256Audiences = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * Signs SVIDs for {@code audience} with RS256 (a 2048-bit key, also published in the JWKS with
     * {@code "use":"sig"}), as SPIRE does with {@code jwt_key_type = "rsa-2048"}.
     */
    public synchronized void useRs256For(String audience) {
        if (rsa == null) {
            try {
                rsa = new com.nimbusds.jose.jwk.gen.RSAKeyGenerator(2048).keyUse(KeyUse.SIGNATURE)
                        .algorithm(JWSAlgorithm.RS256).keyID(UUID.randomUUID().toString()).generate();
            } catch (JOSEException e) {
                throw new IllegalStateException("cannot generate an RSA signing key", e);
            }
        }
        rs256Audiences.add(audience);
    }

    public String keyId() {
        return key.getKeyID();
    }

    public JwtSvid sign(SpiffeId subject) {
        return sign(subject, audience);
    }

    /** The configured (first) audience. */
    public String audience() {
        return audience.get(0);
    }

    public JwtSvid sign(SpiffeId subject, List<String> audience) {
        Instant now = clock.instant().truncatedTo(ChronoUnit.SECONDS);
        Instant exp = now.plus(SVID_TTL);
        // Built as a map, not a JWTClaimsSet: SPIRE always writes "aud" as an array, nimbus would
        // flatten a single audience to a string.
        Map<String, Object> claims = new LinkedHashMap<>();
        claims.put("sub", subject.toString());
        claims.put("aud", audience);
        claims.put("iss", issuer);
        claims.put("iat", now.getEpochSecond());
        claims.put("exp", exp.getEpochSecond());
        // Unique per SVID, as providers that take an assertion once (Anthropic) check.
        claims.put("jti", UUID.randomUUID().toString());
        com.nimbusds.jose.jwk.RSAKey rs = audience.stream().anyMatch(rs256Audiences::contains) ? rsa : null;
        JWSObject jwt = new JWSObject(new JWSHeader.Builder(rs != null ? JWSAlgorithm.RS256 : JWSAlgorithm.ES256)
                .keyID(rs != null ? rs.getKeyID() : key.getKeyID()).type(JOSEObjectType.JWT).build(), new Payload(claims));
        try {
            jwt.sign(rs != null ? new com.nimbusds.jose.crypto.RSASSASigner(rs) : signer);
        } catch (JOSEException e) {
            throw new IllegalStateException("signing a JWT-SVID failed", e);
        }
        return new JwtSvid(subject, jwt.serialize(), now, exp);
    }

    /** {@code /.well-known/jwks.json}: the public key only. */
    public String jwksJson() {
        com.nimbusds.jose.jwk.RSAKey rs = rsa;
        return (rs == null ? new JWKSet(key.toPublicJWK()) : new JWKSet(List.<com.nimbusds.jose.jwk.JWK>of(key.toPublicJWK(), rs.toPublicJWK())))
                .toString(true);
    }

    /** {@code /.well-known/openid-configuration}: {@code issuer} must equal the URL Vault is given. */
    public String openidConfigurationJson() {
        return "{\"issuer\":\"" + issuer + "\",\"jwks_uri\":\"" + issuer + "/.well-known/jwks.json\","
                + "\"response_types_supported\":[\"id_token\"],\"subject_types_supported\":[\"public\"],"
                + "\"id_token_signing_alg_values_supported\":[\"ES256\",\"RS256\"]}";
    }
}
