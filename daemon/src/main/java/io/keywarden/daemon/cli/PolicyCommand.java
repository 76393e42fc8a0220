package io.keywarden.daemon.cli;

import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerRegistry;
import java.util.Map;
import io.keywarden.policy.Durations;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.Policy;
import io.keywarden.policy.PolicyLoader;
import io.keywarden.policy.Workload;
import io.keywarden.policy.yaml.Problem;
import io.keywarden.policy.yaml.ProblemsException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "policy", description = "Work with policy files.", subcommands = PolicyCommand.Check.class)
final class PolicyCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required (check)");
    }

    @Command(name = "check", description = "Validate a policy and print a summary; exit 2 with FILE:LINE:COL: message per error.")
    static final class Check implements Callable<Integer> {
        @Parameters(paramLabel = "FILE", description = "The policy file.")
        Path file;

        @Option(names = "--issuer", paramLabel = "vault|dev",
                description = "Also check what a single issuer of this type needs (vault: every key needs a vault block).")
        String issuer;

        @Option(names = "--config", paramLabel = "FILE",
                description = "Also check every key against the config's issuer instances: the instance it names exists"
                        + " (or is the only one) and its params suit the instance's type.")
        Path config;

        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Override
        public Integer call() {
            if (issuer != null && !issuer.equals("vault") && !issuer.equals("dev")) {
                throw new UserError("keywarden policy check: --issuer must be vault or dev, not '" + issuer + "'");
            }
            if (issuer != null && config != null) {
                throw new UserError("keywarden policy check: give --issuer or --config, not both");
            }
            Map<String, IssuerSpec> instances = config != null ? RunCommand.loadConfig(config).issuers()
                    : "vault".equals(issuer) ? Map.of("vault", new io.keywarden.issuer.vault.VaultType.Spec("vault", null, "vault"))
                    : null;
            Policy p = load(file);
            if (instances != null) {
                List<Problem> problems = IssuerRegistry.check(instances, p);
                if (!problems.isEmpty()) {
                    throw new UserError(problems.stream().map(Problem::format).toList());
                }
            }
            print(p, instances, spec.commandLine().getOut());
            warnings(p).forEach(spec.commandLine().getErr()::println);
            return 0;
        }

        static void print(Policy p, Map<String, IssuerSpec> instances, PrintWriter out) {
            out.printf("%s: OK: %d key%s, %d workload%s, idleRevoke %s%n", p.source(), p.keys().size(),
                    p.keys().size() == 1 ? "" : "s", p.workloads().size(), p.workloads().size() == 1 ? "" : "s",
                    Durations.format(p.idleRevoke()));
            for (KeySpec k : p.keys().values()) {
                String issuedBy = k.issuer().map(i -> "issuer " + i + (instances == null ? "" : " ("
                        + instances.get(i).type() + ")") + ", ").orElse(instances != null && instances.size() == 1
                        ? "issuer " + instances.keySet().iterator().next() + ", " : "");
                String params = k.params().isEmpty() ? "" : "params " + String.join(",", k.params().keySet()) + ", ";
                out.printf("  key %s: %s%s%s, refreshAt %.2f, grace %s%n", k.name(), issuedBy, params,
                        k.vault().map(v -> "vault role " + v.role() + " path " + v.path() + " field " + v.field()
                                + v.ttl().map(t -> " ttl " + Durations.format(t)).orElse(""))
                                .orElse("no vault block"),
                        k.refreshAt(), Durations.format(k.grace()));
            }
            for (Workload w : p.workloads()) {
                List<String> parts = new ArrayList<>();
                parts.add("keys " + String.join(",", w.keys()));
                parts.add(w.selectors().isEmpty() ? "no selectors (dev provider never matches it)"
                        : "selectors " + String.join(",", w.selectors().stream().map(Object::toString).toList()));
                if (!w.readers().isUnrestricted()) {
                    List<String> r = new ArrayList<>();
                    if (!w.readers().uids().isEmpty()) {
                        r.add("uid " + w.readers().uids());
                    }
                    if (!w.readers().exes().isEmpty()) {
                        r.add("exe " + w.readers().exes());
                    }
                    if (!w.readers().sha256s().isEmpty()) {
                        r.add("sha256 x" + w.readers().sha256s().size());
                    }
                    parts.add("readers " + String.join(" ", r));
                }
                io.keywarden.policy.Guard g = w.guard();
                if (!g.equals(io.keywarden.policy.Guard.NONE)) {
                    List<String> gp = new ArrayList<>();
                    if (g.restrictsModels()) {
                        gp.add("models " + String.join(",", g.models()));
                    }
                    g.budget().tokensPerHour().ifPresent(v -> gp.add("tokensPerHour " + v));
                    g.budget().tokensPerDay().ifPresent(v -> gp.add("tokensPerDay " + v));
                    g.budget().requestsPerMinute().ifPresent(v -> gp.add("requestsPerMinute " + v));
                    g.anomaly().ifPresent(a -> gp.add("anomaly x" + a.factor() + " over " + a.baselineHours() + "h (min "
                            + a.minTokensPerHour() + "/h)"));
                    gp.add("onBreach " + g.onBreach().label());
                    parts.add("guard " + String.join(" ", gp));
                }
                out.printf("  workload %s (%s): %s%n", w.name(), w.spiffeId(), String.join("; ", parts));
            }
        }

        /**
         * Paths the policy names that do not exist on this machine: a {@code readers.exe} or a
         * {@code unix:path} selector no process can ever match, so every read of its key fails while
         * the rest looks fine. Warnings, not errors: the policy may be written for another host.
         */
        static List<String> warnings(Policy p) {
            List<String> out = new ArrayList<>();
            for (Workload w : p.workloads()) {
                String at = w.declaredAt() == null ? p.source() : w.declaredAt().file() + ":" + w.declaredAt().line()
                        + ":" + w.declaredAt().column();
                for (String exe : w.readers().exes()) {
                    if (!java.nio.file.Files.exists(Path.of(exe))) {
                        out.add(at + ": warning: workload " + w.name() + ": readers.exe " + exe + " does not exist on"
                                + " this machine: no process can read its keys here");
                    }
                }
                for (io.keywarden.policy.Selector sel : w.selectors()) {
                    if (sel.kind() == io.keywarden.policy.Selector.Kind.UNIX_PATH
                            && !java.nio.file.Files.exists(Path.of(sel.value()))) {
                        out.add(at + ": warning: workload " + w.name() + ": selector " + sel + " names a file that does"
                                + " not exist on this machine: no process matches it here");
                    }
                }
            }
            return out;
        }
    }

    /** Loads a policy for a command, turning problems into a {@link UserError}. */
    static Policy load(Path file) {
        try {
            return PolicyLoader.load(file);
        } catch (ProblemsException e) {
            throw new UserError(e.problems().stream().map(Problem::format).toList());
        }
    }
}
