package io.keywarden.tests.support;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

/** A GET for tests (a daemon's /metrics or JWKS); fails the test with the reason when unreachable. */
public final class Http {
    private Http() {
    }

    public static String get(String url) {
        try {
            return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(url)).build(),
                    HttpResponse.BodyHandlers.ofString()).body();
        } catch (Exception e) {
            throw new IllegalStateException(url + " unavailable: " + e.getMessage());
        }
    }
}
