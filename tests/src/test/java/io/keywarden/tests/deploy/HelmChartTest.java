package io.keywarden.tests.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.keywarden.daemon.config.Config;
import io.keywarden.daemon.config.ConfigLoader;
import io.keywarden.tests.support.Proc;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The Helm chart, rendered by the real helm (installed by .ci/run) and checked as the API server
 * would read it; the CSI example agent checked against Pod Security "baseline".
 */
class HelmChartTest {
    static final Path DEPLOY = Path.of(System.getProperty("keywarden.repo", ".."), "deploy").toAbsolutePath().normalize();
    static final Path CHART = DEPLOY.resolve("helm/keywarden");

    static String helm() {
        String env = System.getenv("KW_HELM");
        Path p = env != null ? Path.of(env) : Path.of(System.getProperty("user.home"), ".cache/keywarden/helm/v3.22.0/helm");
        assumeTrue(Files.isExecutable(p), "helm is not installed at " + p + " (.ci/run installs it: go install"
                + " helm.sh/helm/v3/cmd/helm@v3.22.0)");
        return p.toString();
    }

    static List<HasMetadata> parse(String yaml) {
        List<HasMetadata> out = new ArrayList<>();
        for (String doc : yaml.split("(?m)^---\\s*$")) {
            if (doc.lines().anyMatch(l -> l.startsWith("kind:"))) {
                out.add((HasMetadata) Serialization.unmarshal(new ByteArrayInputStream(doc.getBytes(StandardCharsets.UTF_8))));
            }
        }
        return out;
    }

    static <T> T one(List<HasMetadata> all, Class<T> type) {
        List<T> of = all.stream().filter(type::isInstance).map(type::cast).toList();
        assertEquals(1, of.size(), type.getSimpleName() + " count");
        return of.get(0);
    }

    @Test
    void lintsAndRendersADaemonSetWithTheCsiDriverAndItsRegistrar() throws Exception {
        String helm = helm();
        Proc.Result lint = Proc.run(helm, "lint", CHART.toString());
        assertEquals(0, lint.code(), lint.out() + lint.err());
        Proc.Result r = Proc.run(helm, "template", "kw", CHART.toString(), "--namespace", "keywarden");
        assertEquals(0, r.code(), r.err());
        List<HasMetadata> all = parse(r.out());
        assertTrue(all.stream().noneMatch(h -> h.getKind().equals("ServiceMonitor") || h.getKind().equals("PrometheusRule")),
                "no monitoring objects without their CRDs");
        DaemonSet ds = one(all, DaemonSet.class);
        assertEquals(1, ds.getSpec().getUpdateStrategy().getRollingUpdate().getMaxSurge().getIntVal());
        assertEquals(0, ds.getSpec().getUpdateStrategy().getRollingUpdate().getMaxUnavailable().getIntVal());
        PodSpec pod = ds.getSpec().getTemplate().getSpec();
        assertTrue(pod.getHostPID());
        Container kw = pod.getContainers().stream().filter(c -> c.getName().equals("keywarden")).findFirst().orElseThrow();
        Container reg = pod.getContainers().stream().filter(c -> c.getName().equals("node-driver-registrar")).findFirst()
                .orElseThrow();
        assertTrue(reg.getArgs().contains("--kubelet-registration-path=/var/lib/kubelet/plugins/csi.keywarden.io/csi.sock"));
        VolumeMount pods = kw.getVolumeMounts().stream().filter(m -> m.getMountPath().equals("/var/lib/kubelet/pods"))
                .findFirst().orElseThrow();
        assertEquals("Bidirectional", pods.getMountPropagation(), "bind mounts must reach the pods");
        assertTrue(kw.getSecurityContext().getPrivileged());
        // Upgrades hand the mount over: --takeover, the old pod idles, the handover socket on the host.
        assertTrue(kw.getArgs().containsAll(List.of("--takeover", "--after-handover", "idle")), kw.getArgs().toString());
        VolumeMount adminMount = kw.getVolumeMounts().stream().filter(m -> m.getName().equals("admin")).findFirst().orElseThrow();
        Volume adminVolume = pod.getVolumes().stream().filter(v -> v.getName().equals("admin")).findFirst().orElseThrow();
        assertEquals("/run/keywarden-admin", adminVolume.getHostPath().getPath(), "both pods see the handover socket");
        assertEquals("/run/keywarden-admin", adminMount.getMountPath());
        for (Container c : pod.getContainers()) {
            for (VolumeMount m : c.getVolumeMounts()) {
                assertTrue(pod.getVolumes().stream().anyMatch(v -> v.getName().equals(m.getName())), c.getName() + " " + m);
            }
        }
        HasMetadata driver = all.stream().filter(h -> h.getKind().equals("CSIDriver")).findFirst().orElseThrow();
        var spec = ((io.fabric8.kubernetes.api.model.storage.CSIDriver) driver).getSpec();
        assertEquals("csi.keywarden.io", driver.getMetadata().getName());
        assertFalse(spec.getAttachRequired());
        assertTrue(spec.getPodInfoOnMount());
        assertEquals(List.of("Ephemeral"), spec.getVolumeLifecycleModes());
        // The rendered config is one the daemon accepts.
        ConfigMap cm = all.stream().filter(h -> h instanceof ConfigMap c && c.getData().containsKey("config.yaml"))
                .map(ConfigMap.class::cast).findFirst().orElseThrow();
        Path tmp = Files.createTempFile("kw-helm-config-", ".yaml");
        try {
            Files.writeString(tmp, cm.getData().get("config.yaml"));
            Config c = ConfigLoader.load(tmp, Map.of("NODE_NAME", "n1"));
            assertEquals(Path.of("/csi/csi.sock"), c.extensions().csi().orElseThrow().socket());
            assertEquals("vault", c.issuers().get("bao").type());
        } finally {
            Files.delete(tmp);
        }
        Proc.Result noTakeover = Proc.run(helm, "template", "kw", CHART.toString(), "--namespace", "keywarden",
                "--set", "upgrade.takeover=false");
        assertEquals(0, noTakeover.code(), noTakeover.err());
        PodSpec plain = one(parse(noTakeover.out()), DaemonSet.class).getSpec().getTemplate().getSpec();
        assertFalse(plain.getContainers().get(0).getArgs().contains("--takeover"));
        assertTrue(plain.getVolumes().stream().anyMatch(v -> v.getName().equals("admin") && v.getEmptyDir() != null));
        Proc.Result withCrds = Proc.run(helm, "template", "kw", CHART.toString(), "--namespace", "keywarden",
                "--api-versions", "monitoring.coreos.com/v1", "--set", "gateway.enabled=true");
        assertEquals(0, withCrds.code(), withCrds.err());
        List<HasMetadata> more = parse(withCrds.out());
        assertTrue(more.stream().anyMatch(h -> h.getKind().equals("ServiceMonitor")));
        String rule = more.stream().filter(h -> h.getKind().equals("PrometheusRule")).findFirst().map(Serialization::asYaml)
                .orElseThrow();
        assertTrue(rule.contains("KeywardenRestarted") && rule.contains("kube_pod_container_status_restarts_total")
                && rule.replace("\\\"", "\"").contains("namespace=\"keywarden\""),
                "a keywarden restart (not a handover) is alerted on");
        assertTrue(rule.contains("KeywardenBudgetBreach") && rule.contains("{{ $labels.workload }}"),
                "the base manifest's alerts, their templates kept literal");
    }

    @Test
    void theFleetRendersItsConfigThePasswordAsAFileAndABundledRedisOnlyTheDaemonSetReaches() throws Exception {
        String helm = helm();
        Proc.Result none = Proc.run(helm, "template", "kw", CHART.toString(), "--namespace", "keywarden");
        assertFalse(none.out().contains("fleet:") || none.out().contains("keywarden-redis"), "no fleet by default");
        Proc.Result r = Proc.run(helm, "template", "kw", CHART.toString(), "--namespace", "keywarden", "--set",
                "fleet.enabled=true", "--set", "fleet.bundled.enabled=true", "--set", "fleet.passwordSecret.name=kw-redis",
                "--set", "fleet.onUnavailable=closed");
        assertEquals(0, r.code(), r.err());
        List<HasMetadata> all = parse(r.out());
        ConfigMap cm = all.stream().filter(h -> h instanceof ConfigMap c && c.getData().containsKey("config.yaml"))
                .map(ConfigMap.class::cast).findFirst().orElseThrow();
        String config = cm.getData().get("config.yaml");
        assertTrue(config.contains("redis: \"redis://keywarden-redis.keywarden.svc:6379\"")
                && config.contains("passwordFile: /etc/keywarden/redis/password") && config.contains("onUnavailable: closed"),
                config);
        // The rendered fleet section is one the daemon accepts (with a password file where the Secret is mounted).
        Path tmp = Files.createTempDirectory("kw-helm-fleet-");
        try {
            Path pw = tmp.resolve("password");
            Files.writeString(pw, "test");
            Files.writeString(tmp.resolve("config.yaml"), config.replace("/etc/keywarden/redis/password", pw.toString()));
            Config c = ConfigLoader.load(tmp.resolve("config.yaml"), Map.of("NODE_NAME", "n1"));
            assertEquals("keywarden-redis.keywarden.svc", c.extensions().fleet().orElseThrow().redis().endpoints().get(0).getHost());
        } finally {
            Proc.run("rm", "-rf", tmp.toString());
        }
        PodSpec pod = one(all, DaemonSet.class).getSpec().getTemplate().getSpec();
        Volume secret = pod.getVolumes().stream().filter(v -> v.getName().equals("redis-password")).findFirst().orElseThrow();
        assertEquals("kw-redis", secret.getSecret().getSecretName());
        assertEquals(0400, secret.getSecret().getDefaultMode());
        assertTrue(pod.getContainers().get(0).getVolumeMounts().stream().anyMatch(m -> m.getName().equals("redis-password")
                && m.getMountPath().equals("/etc/keywarden/redis") && Boolean.TRUE.equals(m.getReadOnly())));
        var policy = all.stream().filter(h -> h instanceof io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy)
                .map(io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy.class::cast).findFirst().orElseThrow();
        assertEquals(Map.of("app.kubernetes.io/name", "keywarden", "app.kubernetes.io/instance", "kw"),
                policy.getSpec().getIngress().get(0).getFrom().get(0).getPodSelector().getMatchLabels(),
                "only the DaemonSet's pods reach the bundled Redis");
        assertTrue(all.stream().anyMatch(h -> h.getKind().equals("Deployment") && h.getMetadata().getName()
                .equals("keywarden-redis")));
    }

    @Test
    void theCsiExampleAgentPassesPodSecurityBaseline() throws Exception {
        List<HasMetadata> all = parse(Files.readString(DEPLOY.resolve("helm/examples/example-agent.yaml")));
        PodSpec pod = one(all, Deployment.class).getSpec().getTemplate().getSpec();
        // Pod Security "baseline": no host namespaces, no hostPath, no privileged, no added capabilities.
        assertFalse(Boolean.TRUE.equals(pod.getHostPID()) || Boolean.TRUE.equals(pod.getHostNetwork())
                || Boolean.TRUE.equals(pod.getHostIPC()));
        for (Volume v : pod.getVolumes()) {
            assertEquals(null, v.getHostPath(), v.getName() + " is a hostPath");
        }
        for (Container c : pod.getContainers()) {
            assertFalse(c.getSecurityContext() != null && Boolean.TRUE.equals(c.getSecurityContext().getPrivileged()));
            assertTrue(c.getSecurityContext().getCapabilities() == null
                    || c.getSecurityContext().getCapabilities().getAdd() == null
                    || c.getSecurityContext().getCapabilities().getAdd().isEmpty());
        }
        Volume keys = pod.getVolumes().stream().filter(v -> v.getCsi() != null).findFirst().orElseThrow();
        assertEquals("csi.keywarden.io", keys.getCsi().getDriver());
        assertTrue(keys.getCsi().getReadOnly());
    }
}
