package io.keywarden.attestation.dev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.nimbusds.jose.JOSEObjectType;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.source.ImmutableJWKSet;
import com.nimbusds.jose.proc.DefaultJOSEObjectTypeVerifier;
import com.nimbusds.jose.proc.JWSVerificationKeySelector;
import com.nimbusds.jose.proc.SecurityContext;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.proc.BadJWTException;
import com.nimbusds.jwt.proc.DefaultJWTClaimsVerifier;
import com.nimbusds.jwt.proc.DefaultJWTProcessor;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.policy.SpiffeId;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class DevIdentityProviderTest {
    final JwtSigner signer = new JwtSigner("http://127.0.0.1:9464", List.of("vault"), Clock.systemUTC());
    final SpiffeId alice = SpiffeId.parse("spiffe://dev.keywarden.local/uid/1001");

    /** What a Vault JWT role bound to sub and aud checks, done with nimbus against the published JWKS. */
    JWTClaimsSet verify(String token, String audience, String subject) throws Exception {
        DefaultJWTProcessor<SecurityContext> p = new DefaultJWTProcessor<>();
        p.setJWSTypeVerifier(new DefaultJOSEObjectTypeVerifier<>(JOSEObjectType.JWT));
        p.setJWSKeySelector(new JWSVerificationKeySelector<>(JWSAlgorithm.ES256,
                new ImmutableJWKSet<>(JWKSet.parse(signer.jwksJson()))));
        p.setJWTClaimsSetVerifier(new DefaultJWTClaimsVerifier<>(audience,
                new JWTClaimsSet.Builder().subject(subject).issuer(signer.issuer()).build(), Set.of("iat", "exp")));
        return p.process(token, null);
    }

    @Test
    void svidVerifiesAgainstItsOwnJwksWithTheClaimsVaultBindsOn() throws Exception {
        JwtSvid svid = signer.sign(alice);
        JWTClaimsSet c = verify(svid.token(), "vault", alice.toString());
        assertEquals(List.of("vault"), c.getAudience());
        assertEquals(Duration.ofMinutes(5), Duration.between(c.getIssueTime().toInstant(), c.getExpirationTime().toInstant()));
        assertEquals(signer.keyId(), com.nimbusds.jwt.SignedJWT.parse(svid.token()).getHeader().getKeyID());
        String payload = new String(java.util.Base64.getUrlDecoder().decode(svid.token().split("\\.")[1]),
                java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(payload.contains("\"aud\":[\"vault\"]"), "aud is always an array, as SPIRE writes it: " + payload);
    }

    @Test
    void rs256ForTheAudiencesThatNeedItWithBothKeysPublishedForSigning() throws Exception {
        signer.useRs256For("api://AzureADTokenExchange");
        var azure = com.nimbusds.jwt.SignedJWT.parse(signer.sign(alice, List.of("api://AzureADTokenExchange")).token());
        var vault = com.nimbusds.jwt.SignedJWT.parse(signer.sign(alice).token());
        assertEquals(JWSAlgorithm.RS256, azure.getHeader().getAlgorithm());
        assertEquals(JWSAlgorithm.ES256, vault.getHeader().getAlgorithm(), "other audiences keep ES256");
        JWKSet set = JWKSet.parse(signer.jwksJson());
        assertEquals(2, set.getKeys().size());
        for (var k : set.getKeys()) {
            assertEquals("sig", k.getKeyUse().identifier(), "Entra needs use sig on every key");
            assertFalse(k.isPrivate(), "public keys only");
        }
        assertTrue(azure.verify(new com.nimbusds.jose.crypto.RSASSAVerifier(
                set.getKeyByKeyId(azure.getHeader().getKeyID()).toRSAKey())));
        assertTrue(azure.getJWTClaimsSet().getJWTID() != null, "a jti, unique per SVID");
        assertFalse(azure.getJWTClaimsSet().getJWTID().equals(vault.getJWTClaimsSet().getJWTID()));
    }

    @Test
    void wrongAudienceOrSubjectIsRejected() {
        JwtSvid svid = signer.sign(alice);
        assertThrows(BadJWTException.class, () -> verify(svid.token(), "openai", alice.toString()));
        assertThrows(BadJWTException.class, () -> verify(svid.token(), "vault", "spiffe://dev.keywarden.local/uid/1002"));
    }

    @Test
    void anotherSignersTokenDoesNotVerify() {
        JwtSigner other = new JwtSigner("http://127.0.0.1:9464", List.of("vault"), Clock.systemUTC());
        assertThrows(Exception.class, () -> verify(other.sign(alice).token(), "vault", alice.toString()));
    }

    @Test
    void jwksHoldsNoPrivateKeyAndDiscoveryPointsAtIt() throws Exception {
        JWKSet set = JWKSet.parse(signer.jwksJson());
        assertEquals(1, set.getKeys().size());
        assertFalse(set.getKeys().get(0).isPrivate());
        assertFalse(signer.jwksJson().contains("\"d\""));
        assertTrue(signer.openidConfigurationJson().contains("\"issuer\":\"http://127.0.0.1:9464\""));
        assertTrue(signer.openidConfigurationJson().contains("\"jwks_uri\":\"http://127.0.0.1:9464/.well-known/jwks.json\""));
    }

    @Test
    void tokenNeverAppearsInToString() {
        JwtSvid svid = signer.sign(alice);
        assertFalse(svid.toString().contains(svid.token()));
        assertTrue(svid.toString().contains(alice.toString()));
    }
}
