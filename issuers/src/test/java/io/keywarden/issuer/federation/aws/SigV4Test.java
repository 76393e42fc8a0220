package io.keywarden.issuer.federation.aws;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** AWS's published SigV4 test-suite vectors (get-vanilla, get-vanilla-query-order-key-case). */
class SigV4Test {
    private static final byte[] SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".getBytes(StandardCharsets.US_ASCII);
    private static final Instant WHEN = Instant.parse("2015-08-30T12:36:00Z");

    private static String sign(Map<String, String> query) {
        String cr = SigV4.canonicalRequest("GET", "/", SigV4.canonicalQuery(query),
                Map.of("Host", "example.amazonaws.com", "X-Amz-Date", "20150830T123600Z"), SigV4.EMPTY_SHA256);
        String scope = SigV4.scope(WHEN, "us-east-1", "service");
        return SigV4.signature(SECRET, WHEN, "us-east-1", "service", SigV4.stringToSign(WHEN, scope, cr));
    }

    @Test
    void getVanilla() {
        assertEquals("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31", sign(Map.of()));
    }

    @Test
    void getVanillaQueryOrderKeyCase() {
        Map<String, String> q = new LinkedHashMap<>();
        q.put("Param2", "value2");
        q.put("Param1", "value1");
        assertEquals("b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500", sign(q));
    }

    @Test
    void presignedQueryCarriesTheSessionTokenAndEndsWithTheSignature() {
        String q = SigV4.presignQuery("POST", "bedrock.amazonaws.com", "/", Map.of("Action", "CallWithBearerToken"),
                "ASIAEXAMPLE", SECRET, "tok/en+=", "us-east-1", "bedrock", WHEN, 43200);
        assertTrue(q.startsWith("Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
                + "ASIAEXAMPLE%2F20150830%2Fus-east-1%2Fbedrock%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=43200"
                + "&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-SignedHeaders=host&X-Amz-Signature="), q);
        assertEquals(64, q.substring(q.indexOf("X-Amz-Signature=") + 16).length());
    }
}
