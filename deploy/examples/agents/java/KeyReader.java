import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * An agent that gets its OpenAI key from keywarden: the file is read for every request and read
 * again after an HTTP 401, because keys rotate. Run: java KeyReader.java
 */
public final class KeyReader {
    static final Path KEY = Path.of(System.getenv().getOrDefault("OPENAI_KEY_FILE", "/run/keywarden/openai/api_key"));

    static HttpResponse<String> models(HttpClient http, String key) throws IOException, InterruptedException {
        HttpRequest r = HttpRequest.newBuilder(URI.create("https://api.openai.com/v1/models"))
                .header("Authorization", "Bearer " + key).build();
        return http.send(r, HttpResponse.BodyHandlers.ofString());
    }

    public static void main(String[] args) throws Exception {
        HttpClient http = HttpClient.newHttpClient();
        for (int attempt = 0; attempt < 2; attempt++) {
            String key;
            try {
                key = Files.readString(KEY);
            } catch (IOException e) {
                System.out.println("no key (" + e.getMessage() + "): " + Files.readString(KEY.resolveSibling("status")).trim());
                return;
            }
            HttpResponse<String> r = models(http, key);
            if (r.statusCode() == 401 && attempt == 0) {
                continue;
            }
            System.out.println("HTTP " + r.statusCode());
            return;
        }
    }
}
