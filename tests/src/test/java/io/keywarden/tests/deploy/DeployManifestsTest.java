package io.keywarden.tests.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.keywarden.daemon.runtime.IdentitySettings;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.KubernetesResource;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.keywarden.daemon.config.Config;
import io.keywarden.daemon.config.ConfigLoader;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.tests.support.Proc;
import java.io.ByteArrayInputStream;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** Every manifest parses into the Kubernetes model with no unknown field; the DaemonSet is locked down. */
class DeployManifestsTest {
    static final Path DEPLOY = Path.of(System.getProperty("keywarden.repo", ".."), "deploy");
    static final Path K8S = DEPLOY.resolve("kubernetes");

    static List<HasMetadata> resources() throws Exception {
        List<HasMetadata> out = new ArrayList<>();
        try (Stream<Path> files = Files.walk(K8S)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".yaml") && !p.getFileName().toString()
                    .equals("kustomization.yaml")).sorted().toList()) {
                for (String doc : Files.readString(f).split("(?m)^---\\s*$")) {
                    if (doc.lines().anyMatch(l -> l.startsWith("kind:"))) {
                        Object o = Serialization.unmarshal(new ByteArrayInputStream(doc.getBytes(StandardCharsets.UTF_8)));
                        out.add((HasMetadata) o);
                        assertNoUnknownFields(o, f.getFileName() + " " + ((HasMetadata) o).getKind());
                    }
                }
            }
        }
        return out;
    }

    /** Fields the model does not know land in additionalProperties: there must be none. */
    static void assertNoUnknownFields(Object o, String where) throws Exception {
        if (o == null || o instanceof String || o instanceof Number || o instanceof Boolean || o instanceof Enum<?>) {
            return;
        }
        if (o instanceof Collection<?> c) {
            for (Object x : c) {
                assertNoUnknownFields(x, where);
            }
            return;
        }
        if (o instanceof Map<?, ?> m) {
            for (Object x : m.values()) {
                assertNoUnknownFields(x, where);
            }
            return;
        }
        if (!(o instanceof KubernetesResource) || o.getClass().getSimpleName().equals("GenericKubernetesResource")) {
            return;
        }
        for (Method get : o.getClass().getMethods()) {
            if (get.getParameterCount() != 0 || !get.getName().startsWith("get") || get.getDeclaringClass() == Object.class) {
                continue;
            }
            Object v = get.invoke(o);
            if (get.getName().equals("getAdditionalProperties")) {
                assertTrue(v == null || ((Map<?, ?>) v).isEmpty(), where + ": unknown field(s) " + v + " in "
                        + o.getClass().getSimpleName());
            } else {
                assertNoUnknownFields(v, where);
            }
        }
    }

    static <T> T one(List<HasMetadata> all, Class<T> type) {
        return all.stream().filter(type::isInstance).map(type::cast).findFirst().orElseThrow();
    }

    @Test
    void manifestsParseAndTheDaemonSetGrantsFuseAndNoMore() throws Exception {
        List<HasMetadata> all = resources();
        assertTrue(all.stream().map(HasMetadata::getKind).toList().containsAll(List.of("Namespace", "ServiceAccount",
                "ConfigMap", "DaemonSet", "Service", "ServiceMonitor", "PrometheusRule", "Deployment", "ResourceQuota")));
        DaemonSet ds = one(all, DaemonSet.class);
        // Every file of the base is in its kustomization, and nothing else.
        String kustomization = Files.readString(K8S.resolve("base/kustomization.yaml"));
        try (Stream<Path> files = Files.list(K8S.resolve("base"))) {
            for (Path f : files.filter(p -> !p.getFileName().toString().equals("kustomization.yaml")).toList()) {
                assertTrue(kustomization.contains("  - " + f.getFileName() + "\n"), f.getFileName() + " is not in kustomization.yaml");
            }
        }
        // system-node-critical outside kube-system: admitted under a ResourceQuota scoped to that class.
        var quota = one(all, io.fabric8.kubernetes.api.model.ResourceQuota.class);
        assertEquals(ds.getSpec().getTemplate().getSpec().getPriorityClassName(),
                quota.getSpec().getScopeSelector().getMatchExpressions().get(0).getValues().get(0));
        assertEquals(ds.getMetadata().getNamespace(), quota.getMetadata().getNamespace());
        PodSpec pod = ds.getSpec().getTemplate().getSpec();
        assertTrue(pod.getHostPID(), "hostPID: the FUSE request's pid must be a host pid");
        assertFalse(pod.getAutomountServiceAccountToken());
        assertEquals("RollingUpdate", ds.getSpec().getUpdateStrategy().getType());
        assertFalse(pod.getTolerations().isEmpty());
        Container c = pod.getContainers().get(0);
        var sc = c.getSecurityContext();
        assertTrue(sc.getPrivileged(), "Bidirectional propagation and /dev/fuse need a privileged container");
        assertTrue(sc.getReadOnlyRootFilesystem());
        assertEquals("/healthz", c.getLivenessProbe().getHttpGet().getPath());
        assertEquals("/readyz", c.getReadinessProbe().getHttpGet().getPath());
        assertTrue(c.getResources().getLimits().containsKey("memory"));
        Map<String, VolumeMount> mounts = new java.util.HashMap<>();
        c.getVolumeMounts().forEach(m -> mounts.put(m.getMountPath(), m));
        assertEquals("Bidirectional", mounts.get("/run/keywarden").getMountPropagation());
        assertTrue(mounts.get("/run/spire/admin").getReadOnly());
        Volume fuse = pod.getVolumes().stream().filter(v -> v.getName().equals(mounts.get("/dev/fuse").getName()))
                .findFirst().orElseThrow();
        assertEquals("CharDevice", fuse.getHostPath().getType());
        // The SPIRE agent's admin socket (deploy/spire/kubernetes/agent.conf) is on the hostPath keywarden mounts.
        Volume spireAdmin = pod.getVolumes().stream().filter(v -> v.getName().equals(mounts.get("/run/spire/admin").getName()))
                .findFirst().orElseThrow();
        String agentConf = Files.readString(DEPLOY.resolve("spire/kubernetes/agent.conf"));
        assertTrue(agentConf.contains("admin_socket_path = \"" + spireAdmin.getHostPath().getPath() + "/admin.sock\""));
        assertTrue(agentConf.contains("authorized_delegates = [\"spiffe://example.org/keywarden\"]"));
        assertTrue(Files.readString(DEPLOY.resolve("spire/register.sh"))
                .contains("entry \"spiffe://$td/keywarden\" k8s:ns:" + ds.getMetadata().getNamespace() + " k8s:sa:"
                        + pod.getServiceAccountName()), "the k8s registration entry selects the DaemonSet's pods");

        Deployment agent = one(all, Deployment.class);
        PodSpec ap = agent.getSpec().getTemplate().getSpec();
        assertTrue(ap.getSecurityContext().getRunAsNonRoot());
        VolumeMount km = ap.getContainers().get(0).getVolumeMounts().stream()
                .filter(m -> m.getMountPath().equals("/run/keywarden")).findFirst().orElseThrow();
        assertEquals("HostToContainer", km.getMountPropagation());
        assertTrue(km.getReadOnly());
    }

    /** Rules the API server enforces on every container (pkg/apis/core/validation), so `kubectl apply` would fail. */
    @Test
    void everyPodTemplatePassesTheApiServersMountAndPrivilegeRules() throws Exception {
        for (HasMetadata r : resources()) {
            PodSpec pod = r instanceof DaemonSet d ? d.getSpec().getTemplate().getSpec()
                    : r instanceof Deployment d ? d.getSpec().getTemplate().getSpec() : null;
            if (pod == null) {
                continue;
            }
            Set<String> volumes = new java.util.HashSet<>();
            pod.getVolumes().forEach(v -> volumes.add(v.getName()));
            for (Container c : pod.getContainers()) {
                var sc = c.getSecurityContext();
                boolean privileged = sc != null && Boolean.TRUE.equals(sc.getPrivileged());
                for (VolumeMount m : c.getVolumeMounts()) {
                    String where = r.getKind() + " " + r.getMetadata().getName() + " " + c.getName() + " " + m.getMountPath();
                    assertTrue(volumes.contains(m.getName()), where + ": no volume " + m.getName());
                    if ("Bidirectional".equals(m.getMountPropagation())) {
                        assertTrue(privileged, where + ": Bidirectional mount propagation is available only to privileged containers");
                    }
                    assertTrue(m.getMountPropagation() == null
                            || Set.of("None", "HostToContainer", "Bidirectional").contains(m.getMountPropagation()), where);
                }
                if (privileged) {
                    assertFalse(Boolean.FALSE.equals(sc.getAllowPrivilegeEscalation()),
                            c.getName() + ": cannot set allowPrivilegeEscalation to false and privileged to true");
                }
                if (sc != null && Boolean.TRUE.equals(sc.getRunAsNonRoot()) && sc.getRunAsUser() != null) {
                    assertTrue(sc.getRunAsUser() != 0, c.getName() + ": runAsNonRoot with runAsUser 0");
                }
            }
        }
    }

    @Test
    void shippedConfigsAndPoliciesLoadWithTheDaemonsOwnLoaders() throws Exception {
        List<HasMetadata> all = resources();
        Path tmp = Files.createTempDirectory("kw-deploy-");
        Files.writeString(tmp.resolve("ca.pem"), "not read by the loader, only checked to exist");
        Policy k8sPolicy = null;
        Config k8sConfig = null;
        try {
            for (HasMetadata r : all) {
                if (r instanceof io.fabric8.kubernetes.api.model.ConfigMap cm) {
                    for (var e : cm.getData().entrySet()) {
                        Path f = tmp.resolve(e.getKey());
                        // The CA comes from a Secret mounted in the pod; point at a stand-in file here.
                        Files.writeString(f, e.getValue().replace("/etc/keywarden/vault-ca/ca.crt", tmp.resolve("ca.pem").toString()));
                        if (e.getKey().equals("policy.yaml")) {
                            k8sPolicy = PolicyLoader.load(f);
                        } else if (e.getKey().equals("config.yaml")) {
                            k8sConfig = ConfigLoader.load(f, Map.of("NODE_NAME", "n1"));
                            assertEquals(IdentitySettings.Provider.SPIRE, k8sConfig.identity().provider());
                        }
                    }
                }
            }
            assertTrue(k8sPolicy != null && k8sConfig != null, "the ConfigMap carries config.yaml and policy.yaml");
            assertEquals(List.of(), io.keywarden.issuer.IssuerRegistry.check(k8sConfig.issuers(), k8sPolicy));
            Config compose = ConfigLoader.load(DEPLOY.resolve("compose/keywarden.yaml"), Map.of());
            assertEquals(List.of("vault"), compose.issuers().values().stream().map(i -> i.type()).toList());
            assertEquals(List.of(), io.keywarden.issuer.IssuerRegistry.check(compose.issuers(),
                    PolicyLoader.load(DEPLOY.resolve("compose/policy.yaml"))));
        } finally {
            Proc.run("rm", "-rf", tmp.toString());
        }
    }

    @Test
    void shellScriptsPassShellcheck() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/shellcheck")), "needs shellcheck (apt-get install shellcheck)");
        List<String> cmd = new ArrayList<>(List.of("shellcheck", "-s", "sh"));
        List<String> bash = new ArrayList<>(List.of("shellcheck", "-s", "bash"));
        try (Stream<Path> files = Files.walk(DEPLOY)) {
            for (Path p : files.filter(f -> f.toString().endsWith(".sh")).toList()) {
                // Each script in the dialect its first line names.
                (Files.readAllLines(p).get(0).contains("bash") ? bash : cmd).add(p.toString());
            }
        }
        cmd.add(DEPLOY.resolve("bin/keywarden").toString());
        cmd.add(DEPLOY.resolve("bin/keywarden-cds").toString());
        Proc.Result r = Proc.run(cmd.toArray(String[]::new));
        assertEquals(0, r.code(), r.out() + r.err());
        if (bash.size() > 3) {
            Proc.Result b = Proc.run(bash.toArray(String[]::new));
            assertEquals(0, b.code(), b.out() + b.err());
        }
        Proc.Result ci = Proc.run("shellcheck", "-s", "bash", DEPLOY.resolveSibling(".ci/run").toString());
        assertEquals(0, ci.code(), ci.out() + ci.err());
    }

    @Test
    void theInstallGuidesDeploymentSectionMatchesTheFiles() throws Exception {
        String readme = Files.readString(DEPLOY.resolveSibling("docs/install.md"));
        String section = readme.substring(readme.indexOf("## Deployment\n"), readme.indexOf("## Docker\n"));
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("`(deploy/[^`\\s]*)`").matcher(section);
        List<String> named = new ArrayList<>();
        while (m.find()) {
            named.add(m.group(1));
        }
        assertTrue(named.size() > 10, named.toString());
        for (String path : named) {
            assertTrue(Files.exists(DEPLOY.resolveSibling(path)), "docs/install.md names " + path + ", which does not exist");
        }
        // Every shipped file is covered by a path the section names (the file or one of its folders).
        try (Stream<Path> files = Files.walk(DEPLOY)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                String rel = DEPLOY.getParent().relativize(f).toString();
                boolean covered = named.stream().anyMatch(n -> rel.equals(n) || rel.startsWith(n.endsWith("/") ? n : n + "/"))
                        || rel.startsWith("deploy/examples/") || rel.startsWith("deploy/docker/");
                assertTrue(covered, rel + " is not described in docs/install.md's deployment section");
            }
        }
    }

    /** A nested value of a parsed YAML document, by keys and list indexes. */
    @SuppressWarnings("unchecked")
    static Object at(Object doc, Object... path) {
        Object o = doc;
        for (Object k : path) {
            o = k instanceof Integer i ? ((List<Object>) o).get(i) : ((Map<String, Object>) o).get(k);
        }
        return o;
    }

    @Test
    void theLogPipelinesShipTheLedgerTheChartWritesLineForLine() throws Exception {
        Object values = Serialization.unmarshal(Files.readString(DEPLOY.resolve("helm/keywarden/values.yaml")), Map.class);
        String ledger = at(values, "audit", "hostPath") + "/audit.jsonl";
        Object fb = Serialization.unmarshal(Files.readString(DEPLOY.resolve("logging/fluent-bit.yaml")), Map.class);
        assertEquals("tail", at(fb, "pipeline", "inputs", 0, "name"));
        assertEquals(ledger, at(fb, "pipeline", "inputs", 0, "path"), "Fluent Bit tails the ledger the chart writes");
        assertEquals("off", String.valueOf(at(fb, "pipeline", "inputs", 0, "skip_long_lines")), "no record is cut");
        assertEquals("raw", at(fb, "pipeline", "outputs", 0, "drop_single_key"), "the line is sent as written");
        assertEquals(at(fb, "pipeline", "inputs", 0, "tag"), at(fb, "pipeline", "outputs", 0, "match"));
        Object vector = Serialization.unmarshal(Files.readString(DEPLOY.resolve("logging/vector.yaml")), Map.class);
        assertEquals(List.of(ledger), at(vector, "sources", "keywarden_audit", "include"));
        assertEquals("text", at(vector, "sinks", "loki", "encoding", "codec"), "the line is sent as written");
        assertEquals(List.of("keywarden_audit"), at(vector, "sinks", "loki", "inputs"));
        assertTrue(((Number) at(vector, "sources", "keywarden_audit", "max_line_bytes")).longValue()
                >= io.keywarden.daemon.audit.MergedLedger.MAX_LINE_BYTES, "Vector never cuts a record keywarden writes");
        for (Object cfg : List.of(fb, vector)) {
            assertTrue(Serialization.asJson(cfg).contains("keywarden-audit"), "the stream the README's query reads");
        }
    }
}
