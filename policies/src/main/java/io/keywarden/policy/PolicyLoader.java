package io.keywarden.policy;

import io.keywarden.policy.yaml.Location;
import io.keywarden.policy.yaml.MappingReader;
import io.keywarden.policy.yaml.Problems;
import io.keywarden.policy.yaml.ProblemsException;
import io.keywarden.policy.yaml.YamlList;
import io.keywarden.policy.yaml.YamlMap;
import io.keywarden.policy.yaml.YamlNode;
import io.keywarden.policy.yaml.YamlReader;
import io.keywarden.policy.yaml.YamlScalar;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Loads a policy file strictly. Every problem in the file is reported at once, each with its
 * {@code FILE:LINE:COL}; nothing is half-loaded: either a whole {@link Policy} or an exception.
 *
 * <p>Over 300 lines on purpose: one strict reader per file, a method per section, all adding to
 * the same {@code Problems}; split, the sections would pass that state around.
 */
public final class PolicyLoader {
    private static final Pattern HEX64 = Pattern.compile("[0-9a-f]{64}");
    private static final Duration MAX_DURATION = Duration.ofDays(366);

    private final Problems problems = new Problems();
    private final String file;

    private PolicyLoader(String file) {
        this.file = file;
    }

    public static Policy load(Path path) throws ProblemsException {
        return load(path, path.toString());
    }

    public static Policy load(Path path, String displayName) throws ProblemsException {
        return new PolicyLoader(displayName).build(YamlReader.read(path, displayName));
    }

    public static Policy parse(String yaml, String displayName) throws ProblemsException {
        return new PolicyLoader(displayName).build(YamlReader.parse(yaml.getBytes(StandardCharsets.UTF_8), displayName));
    }

    private Policy build(YamlNode root) throws ProblemsException {
        Map<String, KeySpec> keys = new LinkedHashMap<>();
        List<Workload> workloads = new ArrayList<>();
        Duration idle = Policy.DEFAULT_IDLE_REVOKE;
        Optional<MappingReader> top = MappingReader.of(root, "the policy", problems);
        if (top.isPresent()) {
            MappingReader r = top.get();
            Optional<YamlNode> keysNode = r.required("keys");
            Optional<YamlNode> wlNode = r.required("workloads");
            idle = r.optionalParsed("idleRevoke", Durations::parse).map(d -> positive(r.map(), "idleRevoke", d))
                    .orElse(Policy.DEFAULT_IDLE_REVOKE);
            r.rejectUnknown();
            keysNode.ifPresent(n -> readKeys(n, keys));
            wlNode.ifPresent(n -> readWorkloads(n, keys, workloads));
            checkParamRefs(keys, workloads);
        }
        problems.throwIfAny();
        return new Policy(keys, workloads, idle, file);
    }

    private Duration positive(YamlNode at, String what, Duration d) {
        if (d.isZero() || d.isNegative()) {
            problems.add(at, what + " must be greater than zero");
        } else if (d.compareTo(MAX_DURATION) > 0) {
            problems.add(at, what + " must be at most 366 days");
        }
        return d;
    }

    private void readKeys(YamlNode node, Map<String, KeySpec> keys) {
        MappingReader.of(node, "keys", problems).ifPresent(r -> {
            if (r.map().entries().isEmpty()) {
                problems.add(node, "keys must define at least one key");
            }
            for (YamlMap.Entry e : r.map().entries()) {
                String where = "keys." + e.key();
                if (!Names.isValid(e.key())) {
                    problems.add(e.keyLocation(), where + ": " + nameError(e.key()));
                }
                r.optional(e.key());
                readKey(e, where).ifPresent(k -> keys.put(k.name(), k));
            }
        });
    }

    private Optional<KeySpec> readKey(YamlMap.Entry e, String where) {
        Optional<MappingReader> opt = MappingReader.of(e.value(), where, problems);
        if (opt.isEmpty()) {
            return Optional.empty();
        }
        MappingReader r = opt.get();
        Optional<String> issuer = r.optionalString("issuer");
        issuer.filter(i -> !Names.isValid(i)).ifPresent(i -> problems.add(r.map(), where + ".issuer: " + nameError(i)));
        Map<String, String> params = r.optional("params").map(n -> stringMap(n, where + ".params", true))
                .orElse(Map.of());
        Optional<VaultSpec> vault = r.optional("vault").flatMap(v -> readVault(v, where + ".vault"));
        double refreshAt = r.optional("refreshAt").map(n -> refreshAt(n, where)).orElse(KeySpec.DEFAULT_REFRESH_AT);
        Duration grace = r.optionalParsed("grace", Durations::parse).orElse(KeySpec.DEFAULT_GRACE);
        if (grace.compareTo(MAX_DURATION) > 0) {
            problems.add(r.map(), where + ".grace must be at most 366 days");
        }
        r.rejectUnknown();
        return Optional.of(new KeySpec(e.key(), issuer, params, vault, refreshAt, grace, e.keyLocation()));
    }

    /**
     * A mapping of strings to strings (names: letters, digits, '_'); with {@code templates}, each
     * value's placeholders must be known ({@link Templates}).
     */
    private Map<String, String> stringMap(YamlNode node, String where, boolean templates) {
        Map<String, String> out = new LinkedHashMap<>();
        MappingReader.of(node, where, problems).ifPresent(r -> {
            for (YamlMap.Entry e : r.map().entries()) {
                r.optional(e.key());
                if (!Templates.isParamName(e.key())) {
                    problems.add(e.keyLocation(), where + ": '" + e.key() + "' is not a parameter name (a letter,"
                            + " then letters, digits or '_')");
                    continue;
                }
                r.string(e.value(), where + "." + e.key()).ifPresent(v -> {
                    if (v.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
                        problems.add(e.value(), where + "." + e.key() + " must not contain control characters");
                    } else if (templates && Templates.problem(v).isPresent()) {
                        problems.add(e.value(), where + "." + e.key() + " '" + v + "' " + Templates.problem(v).get());
                    } else {
                        out.put(e.key(), v);
                    }
                });
            }
            r.rejectUnknown();
        });
        return out;
    }

    /** Every {@code {workload.params.X}} a key uses is defined by every workload granted the key. */
    private void checkParamRefs(Map<String, KeySpec> keys, List<Workload> workloads) {
        for (Workload w : workloads) {
            for (String k : w.keys()) {
                KeySpec key = keys.get(k);
                if (key == null) {
                    continue;
                }
                for (String t : Templates.of(key)) {
                    if (Templates.problem(t).isPresent()) {
                        continue;
                    }
                    for (String ref : Templates.paramRefs(t)) {
                        if (!w.params().containsKey(ref)) {
                            problems.add(w.declaredAt(), "workload '" + w.name() + "' has no params." + ref
                                    + ", which key '" + k + "' uses");
                        }
                    }
                }
                key.vault().ifPresent(v -> {
                    if (Templates.problem(v.path()).isEmpty()
                            && Templates.paramRefs(v.path()).stream().allMatch(w.params()::containsKey)) {
                        checkVaultPath(w.declaredAt(), "keys." + k + ".vault.path for workload '" + w.name() + "'",
                                Templates.expand(v.path(), w), false);
                    }
                });
            }
        }
    }

    private double refreshAt(YamlNode n, String where) {
        if (n instanceof YamlScalar s && (s.kind() == YamlScalar.Kind.FLOAT || s.kind() == YamlScalar.Kind.INTEGER)) {
            double v;
            try {
                v = Double.parseDouble(s.text());
            } catch (NumberFormatException ex) {
                v = Double.NaN;
            }
            if (!(v > 0.0 && v < 1.0)) {
                problems.add(n, where + ".refreshAt must be strictly between 0 and 1, not " + s.text());
                return KeySpec.DEFAULT_REFRESH_AT;
            }
            return v;
        }
        problems.add(n, where + ".refreshAt must be a number between 0 and 1, not " + n.describe());
        return KeySpec.DEFAULT_REFRESH_AT;
    }

    private Optional<VaultSpec> readVault(YamlNode node, String where) {
        return MappingReader.of(node, where, problems).flatMap(r -> {
            Optional<String> role = r.requiredString("role");
            Optional<String> path = r.requiredString("path");
            String field = r.optionalString("field").orElse(VaultSpec.DEFAULT_FIELD);
            Optional<Duration> ttl = r.optionalParsed("ttl", Durations::parse).map(d -> positive(r.map(), where + ".ttl", d));
            r.rejectUnknown();
            role.filter(s -> s.isBlank()).ifPresent(s -> problems.add(r.map(), where + ".role must not be empty"));
            role.flatMap(Templates::problem).ifPresent(pr -> problems.add(r.map(), where + ".role " + pr));
            path.ifPresent(p -> checkVaultPath(r.map(), where + ".path", p, true));
            if (field.isBlank()) {
                problems.add(r.map(), where + ".field must not be empty");
            }
            if (role.isEmpty() || path.isEmpty()) {
                return Optional.empty();
            }
            return Optional.of(new VaultSpec(role.get(), path.get(), field, ttl));
        });
    }

    private void checkVaultPath(YamlNode at, String where, String p, boolean template) {
        checkVaultPath(at.location(), where, p, template);
    }

    /** A relative Vault path without '..', '?', '#', spaces or (as a template) unknown placeholders. */
    private void checkVaultPath(Location at, String where, String p, boolean template) {
        if (template && Templates.problem(p).isPresent()) {
            problems.add(at, where + " '" + p + "' " + Templates.problem(p).get());
            return;
        }
        String bare = template ? p.replaceAll("\\{[^{}]*}", "w") : p;
        if (bare.isBlank() || bare.startsWith("/") || bare.contains("..") || bare.contains("?") || bare.contains("#")
                || bare.contains("{") || bare.contains("}") || bare.contains("//")
                || bare.chars().anyMatch(c -> c < 0x21 || c == 0x7f)) {
            problems.add(at, where + " '" + p + "' is not a Vault path: relative, no '..', '//', '?', '#', spaces or"
                    + " placeholders other than {workload} and {workload.params.NAME}");
        }
    }

    private void readWorkloads(YamlNode node, Map<String, KeySpec> keys, List<Workload> out) {
        if (!(node instanceof YamlList list)) {
            problems.add(node, "workloads must be a list, not " + node.describe());
            return;
        }
        Map<String, Location> names = new HashMap<>();
        Map<SpiffeId, String> ids = new HashMap<>();
        for (int i = 0; i < list.items().size(); i++) {
            YamlNode item = list.items().get(i);
            String where = "workloads[" + i + "]";
            readWorkload(item, where, keys).ifPresent(w -> {
                Location first = names.putIfAbsent(w.name(), w.declaredAt());
                if (first != null) {
                    problems.add(w.declaredAt(), "workload name '" + w.name() + "' is used twice (first at line "
                            + first.line() + ")");
                    return;
                }
                String other = ids.putIfAbsent(w.spiffeId(), w.name());
                if (other != null) {
                    problems.add(w.declaredAt(), "workload '" + w.name() + "' has the same spiffeId as workload '"
                            + other + "'");
                    return;
                }
                out.add(w);
            });
        }
    }

    private Optional<Workload> readWorkload(YamlNode item, String where, Map<String, KeySpec> keys) {
        Optional<MappingReader> opt = MappingReader.of(item, where, problems);
        if (opt.isEmpty()) {
            return Optional.empty();
        }
        MappingReader r = opt.get();
        Optional<String> name = r.requiredString("name");
        name.filter(n -> !Names.isValid(n)).ifPresent(n -> problems.add(item, where + ".name: " + nameError(n)));
        String label = name.map(n -> "workload '" + n + "'").orElse(where);
        Optional<SpiffeId> id = r.required("spiffeId").flatMap(n -> r.string(n, label + ".spiffeId")
                .flatMap(s -> r.parsed(n.location(), label + ".spiffeId", s, SpiffeId::parse)));
        List<Selector> selectors = new ArrayList<>();
        r.optional("selectors").ifPresent(n -> strings(r, n, label + ".selectors").forEach((at, s) ->
                r.parsed(at, label + ".selectors", s, Selector::parse).ifPresent(selectors::add)));
        List<String> grants = new ArrayList<>();
        r.required("keys").ifPresent(n -> strings(r, n, label + ".keys").forEach((at, k) -> {
            if (!keys.containsKey(k)) {
                problems.add(at, label + " names key '" + k + "', which is not defined under keys");
            } else if (grants.contains(k)) {
                problems.add(at, label + " lists key '" + k + "' twice");
            } else {
                grants.add(k);
            }
        }));
        Readers readers = r.optional("readers").map(n -> readReaders(n, label + ".readers")).orElse(Readers.ANY);
        Map<String, String> params = r.optional("params").map(n -> stringMap(n, label + ".params", false))
                .orElse(Map.of());
        Guard guard = r.optional("guard").map(n -> new GuardReader(problems).read(n, label + ".guard")).orElse(Guard.NONE);
        r.rejectUnknown();
        if (name.isEmpty() || id.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(new Workload(name.get(), id.get(), selectors, grants, readers, params, guard, item.location()));
    }

    private Readers readReaders(YamlNode node, String where) {
        return MappingReader.of(node, where, problems).map(r -> {
            List<Integer> uids = new ArrayList<>();
            r.optional("uid").ifPresent(n -> items(n, where + ".uid").forEach(u -> {
                if (u instanceof YamlScalar s && s.kind() == YamlScalar.Kind.INTEGER && isUid(s.text())) {
                    uids.add(Integer.parseUnsignedInt(s.text()));
                } else {
                    problems.add(u, where + ".uid entries must be numbers from 0 to 4294967294, not "
                            + (u instanceof YamlScalar s ? "'" + s.text() + "'" : u.describe()));
                }
            }));
            List<String> exes = new ArrayList<>();
            r.optional("exe").ifPresent(n -> strings(r, n, where + ".exe").forEach((at, s) -> {
                Optional<String> bad = Paths.canonicalProblem(s);
                if (bad.isPresent()) {
                    problems.add(at, where + ".exe '" + s + "' " + bad.get());
                } else {
                    exes.add(s);
                }
            }));
            List<String> digests = new ArrayList<>();
            r.optional("sha256").ifPresent(n -> strings(r, n, where + ".sha256").forEach((at, s) -> {
                if (!HEX64.matcher(s).matches()) {
                    problems.add(at, where + ".sha256 '" + s + "' must be 64 lower-case hex digits");
                } else {
                    digests.add(s);
                }
            }));
            r.rejectUnknown();
            return new Readers(uids, exes, digests);
        }).orElse(Readers.ANY);
    }

    private static boolean isUid(String s) {
        return Paths.isCanonicalId(s);
    }

    private List<YamlNode> items(YamlNode n, String where) {
        if (n instanceof YamlList l) {
            return l.items();
        }
        problems.add(n, where + " must be a list, not " + n.describe());
        return List.of();
    }

    /** The string items of a list, keyed by their location, in order. */
    private Map<Location, String> strings(MappingReader r, YamlNode n, String where) {
        Map<Location, String> out = new LinkedHashMap<>();
        for (YamlNode item : items(n, where)) {
            r.string(item, where + " entry").ifPresent(s -> out.put(item.location(), s));
        }
        return out;
    }

    private static String nameError(String name) {
        try {
            Names.check(name);
            return "";
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
    }
}
