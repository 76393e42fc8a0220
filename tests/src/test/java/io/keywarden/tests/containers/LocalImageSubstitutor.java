package io.keywarden.tests.containers;

import java.util.Map;
import org.testcontainers.utility.DockerImageName;
import org.testcontainers.utility.ImageNameSubstitutor;

/**
 * Where deploy/docker/build-images.sh built local images (no registry), every public image a suite
 * or Testcontainers itself asks for (its start-up image, alpine) is replaced by the local one built
 * in its place, so nothing is pulled; elsewhere names pass unchanged. Configured in
 * src/test/resources/testcontainers.properties.
 */
public final class LocalImageSubstitutor extends ImageNameSubstitutor {
    /** Public repository → the images.env entry that names its local stand-in. */
    private static final Map<String, String> STAND_INS = Map.of(
            "alpine", "PROBE_IMAGE",
            "busybox", "PROBE_IMAGE",
            "python", "PYTHON_IMAGE",
            "quay.io/openbao/openbao", "OPENBAO_IMAGE",
            "ghcr.io/spiffe/spire-server", "SPIRE_SERVER_IMAGE",
            "ghcr.io/spiffe/spire-agent", "SPIRE_AGENT_IMAGE",
            "ghcr.io/spiffe/oidc-discovery-provider", "OIDC_IMAGE");

    @Override
    public DockerImageName apply(DockerImageName original) {
        if (!Images.built()) {
            return original;
        }
        String key = STAND_INS.get(original.getUnversionedPart());
        String local = key == null ? null : Images.get(key, null);
        return local == null ? original : DockerImageName.parse(local).asCompatibleSubstituteFor(original);
    }

    @Override
    protected String getDescription() {
        return "keywarden's local images (deploy/docker/build-images.sh)";
    }
}
