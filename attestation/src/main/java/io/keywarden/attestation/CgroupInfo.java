package io.keywarden.attestation;

import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Container id and Kubernetes pod UID from a process's {@code /proc/<pid>/cgroup}, for cgroup v1
 * and v2. Only the container runtimes' own hierarchies count, matched whole from the root: the
 * kubelet's systemd and cgroupfs layouts (optionally under a {@code kubelet} cgroup root, as kind
 * uses), with containerd, CRI-O or Docker scopes, and Docker's own {@code /docker/<id>} and
 * {@code docker-<id>.scope}. A path anywhere else (a user's delegated cgroup named
 * {@code pod<uid>}) names no pod or container, and neither does a cgroup directory not owned by
 * root (see {@link CgroupFs}).
 */
public record CgroupInfo(Optional<String> podUid, Optional<String> containerId) {
    public static final CgroupInfo NONE = new CgroupInfo(Optional.empty(), Optional.empty());

    private static final String UID_ = "([0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12})";
    private static final String UID = "([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})";
    private static final String HEX64 = "([0-9a-f]{64})";
    /** kubelet, systemd cgroup driver: slice names spell their parents ({@code kubepods-burstable-pod….slice}). */
    private static final Pattern K8S_SYSTEMD = Pattern.compile(
            "^(?:/kubelet\\.slice)?/(kubelet-)?kubepods\\.slice(?:/\\1?kubepods-(?:burstable|besteffort)\\.slice)?"
            + "/\\1?kubepods(?:-(?:burstable|besteffort))?-pod" + UID_ + "\\.slice"
            + "(?:/(?:cri-containerd|crio|docker)-" + HEX64 + "\\.scope)?$");
    /** kubelet, cgroupfs driver. */
    private static final Pattern K8S_CGROUPFS = Pattern.compile(
            "^(?:/kubelet)?/kubepods(?:/(?:burstable|besteffort))?/pod" + UID + "(?:/" + HEX64 + ")?$");
    private static final Pattern DOCKER = Pattern.compile("^(?:/docker/" + HEX64 + "|/system\\.slice/docker-" + HEX64 + "\\.scope)$");

    /** Parses without checking ownership: for tests of the layouts only. */
    static CgroupInfo parse(String procCgroup) {
        return parse(procCgroup, (controllers, path) -> true);
    }

    public static CgroupInfo parse(String procCgroup, CgroupFs fs) {
        for (String line : procCgroup.split("\n")) {
            int c1 = line.indexOf(':');
            int c2 = c1 < 0 ? -1 : line.indexOf(':', c1 + 1);
            if (c2 < 0) {
                continue;
            }
            String controllers = line.substring(c1 + 1, c2);
            String path = line.substring(c2 + 1).trim();
            CgroupInfo c = layout(path);
            if (c != NONE) {
                return fs.rootOwned(controllers, path) ? c : NONE;
            }
        }
        return NONE;
    }

    private static CgroupInfo layout(String path) {
        Matcher m = K8S_SYSTEMD.matcher(path);
        if (m.matches()) {
            return new CgroupInfo(Optional.of(m.group(2).replace('_', '-').toLowerCase(Locale.ROOT)),
                    Optional.ofNullable(m.group(3)));
        }
        m = K8S_CGROUPFS.matcher(path);
        if (m.matches()) {
            return new CgroupInfo(Optional.of(m.group(1)), Optional.ofNullable(m.group(2)));
        }
        m = DOCKER.matcher(path);
        if (m.matches()) {
            return new CgroupInfo(Optional.empty(), Optional.of(m.group(1) != null ? m.group(1) : m.group(2)));
        }
        return NONE;
    }
}
