import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;

/**
 * An agent that gets its OpenAI key from keywarden: the file is read for every request and read
 * again after an HTTP 401, because keys rotate. It never prints the key, only its fingerprint.
 * Run: java KeyReader.java (OPENAI_KEY_FILE and OPENAI_BASE_URL override the defaults).
 *
 * <p>Gateway mode ({@code KEYWARDEN_MODE=gateway}): no key at all; {@code OPENAI_BASE_URL} is
 * keywarden's gateway (e.g. {@code http://127.0.0.1:8787/openai/v1}), which finds this process and
 * injects the workload's key on the wire. A placeholder goes in the header, as SDKs insist on one.
 */
public final class KeyReader {
    static final Path KEY = Path.of(System.getenv().getOrDefault("OPENAI_KEY_FILE", "/run/keywarden/openai/api_key"));
    static final String API = System.getenv().getOrDefault("OPENAI_BASE_URL", "https://api.openai.com/v1");

    static HttpResponse<String> models(HttpClient http, String key) throws IOException, InterruptedException {
        HttpRequest r = HttpRequest.newBuilder(URI.create(API + "/models"))
                .header("Authorization", "Bearer " + key).build();
        return http.send(r, HttpResponse.BodyHandlers.ofString());
    }

    static String fingerprint(String key) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
        return "sha256:" + HexFormat.of().formatHex(d).substring(0, 16);
    }

    static String status() {
        try {
            return Files.readString(KEY.resolveSibling("status")).trim();
        } catch (IOException e) {
            return "no status (" + e.getMessage() + ")";
        }
    }

    static int gateway(HttpClient http) throws Exception {
        String model = System.getenv().getOrDefault("OPENAI_MODEL", "gpt-4.1-mini");
        HttpRequest r = HttpRequest.newBuilder(URI.create(API + "/chat/completions"))
                .header("Content-Type", "application/json").header("Authorization", "Bearer keywarden")
                .POST(HttpRequest.BodyPublishers.ofString("{\"model\":\"" + model
                        + "\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}]}")).build();
        HttpResponse<String> resp = http.send(r, HttpResponse.BodyHandlers.ofString());
        // 200: the provider's answer; 403/429/503: keywarden's own {"error":{"type":"keywarden","code",...}}.
        System.out.println("gateway: HTTP " + resp.statusCode() + (resp.statusCode() == 200 ? "" : " " + resp.body()));
        return resp.statusCode() == 200 ? 0 : 1;
    }

    public static void main(String[] args) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        if ("gateway".equals(System.getenv("KEYWARDEN_MODE"))) {
            System.exit(gateway(http));
            return;
        }
        for (int attempt = 0; attempt < 2; attempt++) {
            String key;
            try {
                key = Files.readString(KEY);
            } catch (IOException e) {
                // EACCES: this process is not entitled; EIO: no valid key right now (see status).
                System.out.println("no key (" + e.getMessage() + "): keywarden says: " + status());
                System.exit(1);
                return;
            }
            HttpResponse<String> r = models(http, key);
            if (r.statusCode() == 401 && attempt == 0) {
                System.out.println("key " + fingerprint(key) + " refused (rotated?); reading the file again");
                continue;
            }
            System.out.println("HTTP " + r.statusCode());
            System.exit(r.statusCode() == 200 ? 0 : 1);
        }
    }
}
