package io.keywarden.daemon.csi;

import java.nio.file.Path;
import java.util.Optional;

/** The CSI node plugin's settings ({@code csi.keywarden.io}): its socket and the node id it reports (default: the node's name). */
public record CsiSettings(Path socket, Optional<String> nodeId) {
}
