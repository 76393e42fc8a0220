package io.keywarden.daemon.hook;

import java.net.URI;
import java.time.Duration;

/** The policy hook's settings: an OPA decision per gateway request and per issuance, at {@code url}, within {@code timeout}. */
public record HookSettings(URI url, Duration timeout, boolean failClosed) {
}
