package io.keywarden.attestation;

import java.util.Locale;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Container id and Kubernetes pod UID from a process's {@code /proc/<pid>/cgroup}, for cgroup v1
 * and v2 paths as containerd, CRI-O, Docker and the kubelet's cgroupfs and systemd drivers write them.
 */
public record CgroupInfo(Optional<String> podUid, Optional<String> containerId) {
    public static final CgroupInfo NONE = new CgroupInfo(Optional.empty(), Optional.empty());

    private static final Pattern POD = Pattern.compile(
            "pod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})");
    /** The last path element: {@code <64hex>}, {@code docker-<64hex>.scope}, {@code cri-containerd-<64hex>.scope}, {@code crio-<64hex>}. */
    private static final Pattern CONTAINER = Pattern.compile("^(?:[a-z][a-z-]*-)?([0-9a-f]{64})(?:\\.scope)?$");

    public static CgroupInfo parse(String procCgroup) {
        String pod = null;
        String container = null;
        for (String line : procCgroup.split("\n")) {
            int c1 = line.indexOf(':');
            int c2 = c1 < 0 ? -1 : line.indexOf(':', c1 + 1);
            if (c2 < 0) {
                continue;
            }
            String path = line.substring(c2 + 1).trim();
            Matcher pm = POD.matcher(path);
            if (pod == null && pm.find()) {
                pod = pm.group(1).replace('_', '-').toLowerCase(Locale.ROOT);
            }
            if (container == null) {
                for (String seg : path.split("/")) {
                    Matcher cm = CONTAINER.matcher(seg);
                    if (cm.matches()) {
                        container = cm.group(1);
                    }
                }
            }
        }
        return new CgroupInfo(Optional.ofNullable(pod), Optional.ofNullable(container));
    }
}
