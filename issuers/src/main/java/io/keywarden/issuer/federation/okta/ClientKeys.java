package io.keywarden.issuer.federation.okta;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSObject;
import com.nimbusds.jose.Payload;
import com.nimbusds.jose.crypto.ECDSASigner;
import com.nimbusds.jose.crypto.ECDSAVerifier;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.JWK;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.KeyUse;
import com.nimbusds.jose.jwk.gen.ECKeyGenerator;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.ECPublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The keys an issuer signs OAuth {@code private_key_jwt} client assertions with (Okta): loaded from
 * files ({@code issuers.<name>.signingKeyFile}), so every node and every restart signs with the
 * same key and one Okta app (one JWKS) serves the fleet. The first key signs; every key listed is
 * published, so a rotation lists the new key second, waits for the authorization server to have
 * it, then lists it first. {@code kid} is the key's RFC 7638 thumbprint. The public JWKS is served
 * on {@code ops.listen} ({@link #PATH}) and printed by {@code keywarden jwks --key FILE…}.
 *
 * <p>A key file is an EC P-256 private JWK (what {@code keywarden jwks --generate FILE} writes) or
 * PEM: a PKCS#8 {@code PRIVATE KEY} block followed by its {@code PUBLIC KEY} block ({@code openssl
 * genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out k.pem && openssl pkey -in k.pem
 * -pubout >> k.pem}).
 */
public final class ClientKeys {
    public static final String PATH = io.keywarden.issuer.IssuerRegistry.CLIENT_JWKS_PATH;
    static final Duration ASSERTION_TTL = Duration.ofMinutes(5);
    private static final Pattern PEM = Pattern.compile("-----BEGIN ([A-Z ]+)-----([A-Za-z0-9+/=\\s]+)-----END \\1-----");
    private final List<ECKey> keys;
    private final ECDSASigner signer;
    private final Clock clock;

    private ClientKeys(List<ECKey> keys, Clock clock) {
        this.keys = List.copyOf(keys);
        try {
            this.signer = new ECDSASigner(keys.get(0));
        } catch (JOSEException e) {
            throw new IllegalArgumentException("the signing key cannot sign: " + e.getMessage(), e);
        }
        this.clock = clock;
    }

    /** The keys of {@code files} (the first signs); the message of a failure names the file and what is wrong. */
    public static ClientKeys load(List<Path> files, Clock clock) throws IOException {
        if (files.isEmpty()) {
            throw new IOException("no signing key file");
        }
        List<ECKey> keys = new ArrayList<>();
        for (Path f : files) {
            keys.add(read(f));
        }
        return new ClientKeys(keys, clock);
    }

    /** One private key from a JWK or PEM file, its {@code kid} set to its thumbprint. */
    public static ECKey read(Path file) throws IOException {
        String text;
        try {
            text = Files.readString(file, StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new IOException(file + " cannot be read: " + e.getMessage(), e);
        }
        ECKey key;
        try {
            key = text.stripLeading().startsWith("{") ? fromJwk(text) : fromPem(text);
        } catch (java.text.ParseException e) {
            // The parser's message may quote the text, which is a private key: not repeated here.
            throw new IOException(file + " is not an EC P-256 private key: not a JWK (unparsable JSON); a private JWK"
                    + " or PEM (PRIVATE KEY then PUBLIC KEY) is expected");
        } catch (java.security.GeneralSecurityException | IllegalArgumentException e) {
            throw new IOException(file + " is not an EC P-256 private key (a private JWK, or PEM: PRIVATE KEY then"
                    + " PUBLIC KEY): " + e.getMessage(), e);
        }
        if (!Curve.P_256.equals(key.getCurve())) {
            throw new IOException(file + " holds a key on " + key.getCurve() + ": only P-256 (ES256) is supported");
        }
        if (!key.isPrivate()) {
            throw new IOException(file + " holds only a public key: the private key is needed to sign");
        }
        try {
            // The public half must be the private key's: a signature made with one verifies with the other.
            JWSObject probe = new JWSObject(new JWSHeader(JWSAlgorithm.ES256), new Payload("probe"));
            probe.sign(new ECDSASigner(key));
            if (!probe.verify(new ECDSAVerifier(key.toPublicJWK()))) {
                throw new IOException(file + ": its public key is not its private key's");
            }
            return new ECKey.Builder(key).keyID(key.computeThumbprint().toString()).keyUse(KeyUse.SIGNATURE)
                    .algorithm(JWSAlgorithm.ES256).build();
        } catch (JOSEException e) {
            throw new IOException(file + ": cannot sign with it: " + e.getMessage(), e);
        }
    }

    private static ECKey fromJwk(String text) throws java.text.ParseException {
        JWK jwk = JWK.parse(text.strip());
        if (!(jwk instanceof ECKey ec)) {
            throw new IllegalArgumentException("a " + jwk.getKeyType() + " JWK, not EC");
        }
        return ec;
    }

    private static ECKey fromPem(String text) throws java.security.GeneralSecurityException {
        Map<String, byte[]> blocks = new LinkedHashMap<>();
        Matcher m = PEM.matcher(text);
        while (m.find()) {
            blocks.put(m.group(1), Base64.getMimeDecoder().decode(m.group(2)));
        }
        if (!blocks.containsKey("PRIVATE KEY") || !blocks.containsKey("PUBLIC KEY")) {
            throw new IllegalArgumentException("PEM blocks " + blocks.keySet() + ": PRIVATE KEY (PKCS#8) and PUBLIC KEY"
                    + " expected (an 'EC PRIVATE KEY' block converts with openssl pkcs8 -topk8 -nocrypt)");
        }
        KeyFactory ec = KeyFactory.getInstance("EC");
        ECPrivateKey priv = (ECPrivateKey) ec.generatePrivate(new PKCS8EncodedKeySpec(blocks.get("PRIVATE KEY")));
        ECPublicKey pub = (ECPublicKey) ec.generatePublic(new X509EncodedKeySpec(blocks.get("PUBLIC KEY")));
        return new ECKey.Builder(Curve.forECParameterSpec(pub.getParams()), pub).privateKey(priv).build();
    }

    /** A new P-256 key as a private JWK (for {@code keywarden jwks --generate}). */
    public static String generate() {
        try {
            ECKey k = new ECKeyGenerator(Curve.P_256).keyUse(KeyUse.SIGNATURE).algorithm(JWSAlgorithm.ES256).generate();
            return new ECKey.Builder(k).keyID(k.computeThumbprint().toString()).build().toJSONString();
        } catch (JOSEException e) {
            throw new IllegalStateException("cannot generate a P-256 key", e);
        }
    }

    /** The public JWKS of every key of {@code sets}, each kid once. */
    public static String jwksJson(Collection<ClientKeys> sets) {
        Map<String, JWK> pub = new LinkedHashMap<>();
        for (ClientKeys s : sets) {
            for (ECKey k : s.keys) {
                pub.putIfAbsent(k.getKeyID(), k.toPublicJWK());
            }
        }
        return new JWKSet(new ArrayList<>(pub.values())).toString(true);
    }

    /** The public halves of the keys, the signing one first. */
    public List<JWK> publicKeys() {
        return keys.stream().map(k -> (JWK) k.toPublicJWK()).toList();
    }

    /** The kid of the key that signs. */
    public String signingKid() {
        return keys.get(0).getKeyID();
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
        JWSObject jwt = new JWSObject(new JWSHeader.Builder(JWSAlgorithm.ES256).keyID(signingKid())
                .type(JOSEObjectType.JWT).build(), new Payload(claims));
        try {
            jwt.sign(signer);
        } catch (JOSEException e) {
            throw new IllegalStateException("signing a client assertion failed", e);
        }
        return jwt.serialize();
    }
}
