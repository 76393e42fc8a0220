package io.keywarden.issuer.federation.aws;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * AWS Signature Version 4, the part keywarden needs: the canonical request, the string to sign,
 * the derived signing key and the signature (tested against AWS's published suite vectors), and
 * query-string presigning. Written here rather than taken from the AWS SDK: its auth module brings
 * the SDK core, its HTTP SPI and its utilities (several MB and a second HTTP stack) for one HMAC
 * chain; this is that chain and nothing else.
 */
public final class SigV4 {
    static final String ALGORITHM = "AWS4-HMAC-SHA256";
    static final DateTimeFormatter AMZ_DATE = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'").withZone(ZoneOffset.UTC);
    /** SHA-256 of an empty payload. */
    static final String EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    private SigV4() {
    }

    /** RFC 3986 encoding as SigV4 wants it: unreserved characters kept, space as %20, '~' kept. */
    static String uriEncode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20").replace("*", "%2A").replace("%7E", "~");
    }

    /** The query, keys and values encoded, sorted by encoded key then value. */
    static String canonicalQuery(Map<String, String> query) {
        TreeMap<String, String> sorted = new TreeMap<>();
        query.forEach((k, v) -> sorted.put(uriEncode(k), uriEncode(v)));
        StringBuilder b = new StringBuilder();
        sorted.forEach((k, v) -> b.append(b.length() == 0 ? "" : "&").append(k).append('=').append(v));
        return b.toString();
    }

    static String canonicalRequest(String method, String path, String canonicalQuery, Map<String, String> headers,
                                   String payloadHash) {
        TreeMap<String, String> h = new TreeMap<>();
        headers.forEach((k, v) -> h.put(k.toLowerCase(java.util.Locale.ROOT), v.trim().replaceAll(" +", " ")));
        StringBuilder canonicalHeaders = new StringBuilder();
        h.forEach((k, v) -> canonicalHeaders.append(k).append(':').append(v).append('\n'));
        return method + "\n" + path + "\n" + canonicalQuery + "\n" + canonicalHeaders + "\n" + String.join(";", h.keySet())
                + "\n" + payloadHash;
    }

    static String scope(Instant when, String region, String service) {
        return AMZ_DATE.format(when).substring(0, 8) + "/" + region + "/" + service + "/aws4_request";
    }

    static String stringToSign(Instant when, String scope, String canonicalRequest) {
        return ALGORITHM + "\n" + AMZ_DATE.format(when) + "\n" + scope + "\n" + sha256Hex(canonicalRequest);
    }

    /** The signature of {@code stringToSign} with the key derived from {@code secret} for the scope's day, region and service. */
    static String signature(byte[] secret, Instant when, String region, String service, String stringToSign) {
        byte[] prefixed = new byte[secret.length + 4];
        System.arraycopy("AWS4".getBytes(StandardCharsets.US_ASCII), 0, prefixed, 0, 4);
        System.arraycopy(secret, 0, prefixed, 4, secret.length);
        byte[] k = hmac(prefixed, AMZ_DATE.format(when).substring(0, 8));
        java.util.Arrays.fill(prefixed, (byte) 0);
        k = hmac(k, region);
        k = hmac(k, service);
        k = hmac(k, "aws4_request");
        return HexFormat.of().formatHex(hmac(k, stringToSign));
    }

    /**
     * A presigned URL's query (without the leading '?'): {@code query} plus the X-Amz-* parameters
     * and the signature, for {@code method https://host path}, valid {@code expiresSeconds}.
     */
    public static String presignQuery(String method, String host, String path, Map<String, String> query, String accessKeyId,
                               byte[] secret, String sessionToken, String region, String service, Instant when,
                               long expiresSeconds) {
        String scope = scope(when, region, service);
        Map<String, String> q = new TreeMap<>(query);
        q.put("X-Amz-Algorithm", ALGORITHM);
        q.put("X-Amz-Credential", accessKeyId + "/" + scope);
        q.put("X-Amz-Date", AMZ_DATE.format(when));
        q.put("X-Amz-Expires", Long.toString(expiresSeconds));
        if (sessionToken != null) {
            q.put("X-Amz-Security-Token", sessionToken);
        }
        q.put("X-Amz-SignedHeaders", "host");
        String cq = canonicalQuery(q);
        String cr = canonicalRequest(method, path, cq, Map.of("host", host), EMPTY_SHA256);
        String sig = signature(secret, when, region, service, stringToSign(when, scope, cr));
        return cq + "&X-Amz-Signature=" + sig;
    }

    static String sha256Hex(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] hmac(byte[] key, String data) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
