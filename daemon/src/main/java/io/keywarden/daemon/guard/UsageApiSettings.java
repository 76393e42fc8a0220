package io.keywarden.daemon.guard;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;

/** The usage-API sensor's settings: OpenAI's organization usage API, polled for file-mode keys with an admin key read from a file. */
public record UsageApiSettings(URI url, Path adminKeyFile, Duration interval) {
}
