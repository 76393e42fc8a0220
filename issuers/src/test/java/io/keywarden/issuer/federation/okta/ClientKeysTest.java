package io.keywarden.issuer.federation.okta;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.nimbusds.jose.crypto.ECDSAVerifier;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jwt.SignedJWT;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.spec.ECGenParameterSpec;
import java.time.Clock;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ClientKeysTest {
    @TempDir
    Path dir;

    static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }

    static KeyPair ec(String curve) throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec(curve));
        return g.generateKeyPair();
    }

    @Test
    void aPemKeyAndAGeneratedJwkSignAssertionsTheirJwksVerifies() throws Exception {
        KeyPair kp = ec("secp256r1");
        Path pemFile = Files.writeString(dir.resolve("k.pem"), pem("PRIVATE KEY", kp.getPrivate().getEncoded())
                + pem("PUBLIC KEY", kp.getPublic().getEncoded()));
        Path jwkFile = Files.writeString(dir.resolve("k.jwk"), ClientKeys.generate());
        ClientKeys keys = ClientKeys.load(List.of(pemFile, jwkFile), Clock.systemUTC());
        JWKSet set = JWKSet.parse(ClientKeys.jwksJson(List.of(keys, keys)));
        assertEquals(2, set.getKeys().size(), "both keys published, each once");
        assertTrue(set.getKeys().stream().noneMatch(k -> k.isPrivate()), "public halves only");
        assertEquals(ClientKeys.read(pemFile).computeThumbprint().toString(), keys.signingKid(), "kid: the thumbprint");
        SignedJWT jwt = SignedJWT.parse(keys.clientAssertion("0oa-x", "https://okta.example/token"));
        assertEquals(keys.signingKid(), jwt.getHeader().getKeyID(), "the first key signs");
        assertTrue(jwt.verify(new ECDSAVerifier(set.getKeyByKeyId(keys.signingKid()).toECKey())));
        assertEquals("0oa-x", jwt.getJWTClaimsSet().getIssuer());
        assertEquals("0oa-x", jwt.getJWTClaimsSet().getSubject());
    }

    @Test
    void aFileThatIsNotAUsableP256PrivateKeyIsRefusedNamingTheFileAndWhy() throws Exception {
        KeyPair a = ec("secp256r1");
        KeyPair b = ec("secp256r1");
        Path mismatched = Files.writeString(dir.resolve("mismatch.pem"), pem("PRIVATE KEY", a.getPrivate().getEncoded())
                + pem("PUBLIC KEY", b.getPublic().getEncoded()));
        IOException e = assertThrows(IOException.class, () -> ClientKeys.read(mismatched));
        assertTrue(e.getMessage().contains("mismatch.pem") && e.getMessage().contains("not its private key"), e.getMessage());

        Path onlyPrivate = Files.writeString(dir.resolve("priv.pem"), pem("PRIVATE KEY", a.getPrivate().getEncoded()));
        e = assertThrows(IOException.class, () -> ClientKeys.read(onlyPrivate));
        assertTrue(e.getMessage().contains("PUBLIC KEY"), e.getMessage());

        KeyPair p384 = ec("secp384r1");
        Path otherCurve = Files.writeString(dir.resolve("p384.pem"), pem("PRIVATE KEY", p384.getPrivate().getEncoded())
                + pem("PUBLIC KEY", p384.getPublic().getEncoded()));
        e = assertThrows(IOException.class, () -> ClientKeys.read(otherCurve));
        assertTrue(e.getMessage().contains("P-256"), e.getMessage());

        Path publicJwk = Files.writeString(dir.resolve("pub.jwk"),
                com.nimbusds.jose.jwk.JWK.parse(ClientKeys.generate()).toPublicJWK().toJSONString());
        e = assertThrows(IOException.class, () -> ClientKeys.read(publicJwk));
        assertTrue(e.getMessage().contains("only a public key"), e.getMessage());

        Path garbage = Files.writeString(dir.resolve("garbage"), "{not json");
        e = assertThrows(IOException.class, () -> ClientKeys.read(garbage));
        assertTrue(e.getMessage().contains("garbage"), e.getMessage());
        Path torn = Files.writeString(dir.resolve("torn.jwk"), "{\"kty\":\"EC\",\"crv\":\"P-256\",\"d\":\"PRIVATEPART\", oops");
        e = assertThrows(IOException.class, () -> ClientKeys.read(torn));
        assertTrue(e.getMessage().contains("torn.jwk") && !e.getMessage().contains("PRIVATEPART"),
                "the error names the file, never its content: " + e.getMessage());
        assertThrows(IOException.class, () -> ClientKeys.load(List.of(), Clock.systemUTC()));
        assertThrows(IOException.class, () -> ClientKeys.read(dir.resolve("missing")));
    }
}
