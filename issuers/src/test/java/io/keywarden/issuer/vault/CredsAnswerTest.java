package io.keywarden.issuer.vault;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class CredsAnswerTest {
    private static CredsAnswer parse(String json) throws Exception {
        return CredsAnswer.parse(json.getBytes(StandardCharsets.UTF_8), "api_key");
    }

    @Test
    void theEnginesAnswerGivesTheKeysExpiryAtTheProviderAndItsWarnings() throws Exception {
        CredsAnswer a = parse("""
                {"lease_id":"openai/creds/a/x","renewable":false,"lease_duration":600,
                 "data":{"api_key":"sk-test-1","api_key_id":"key_1","api_key_expires_at":1796000000,
                 "service_account_id":"svc_acct_1"},
                 "warnings":["the requested ttl 3h0m0s exceeds the role's max_ttl 1h0m0s: the role's ttl 10m0s was used"]}""");
        assertEquals(Optional.of(Instant.ofEpochSecond(1796000000)), a.keyExpiresAt());
        assertEquals(Optional.of("key_1"), a.apiKeyId());
        assertEquals(1, a.warnings().size());
        assertTrue(a.warnings().get(0).contains("max_ttl"));
        a.secret().get().close();
    }

    @Test
    void theCommunityEnginesAnswerHasNoExpiryAndOddValuesAreIgnored() throws Exception {
        CredsAnswer a = parse("""
                {"lease_id":"l","lease_duration":600,"warnings":null,
                 "data":{"api_key":"sk-test-2","api_key_expires_at":"soon"}}""");
        assertEquals(Optional.empty(), a.keyExpiresAt());
        assertEquals(List.of(), a.warnings());
        CredsAnswer b = parse("""
                {"lease_id":"l","lease_duration":600,"warnings":[{"x":1},"ok"],
                 "data":{"api_key":"sk-test-3","api_key_expires_at":0}}""");
        assertEquals(Optional.empty(), b.keyExpiresAt(), "0 is no expiry");
        assertEquals(List.of("ok"), b.warnings());
        a.secret().get().close();
        b.secret().get().close();
    }
}
