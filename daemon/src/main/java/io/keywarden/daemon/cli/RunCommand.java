package io.keywarden.daemon.cli;

import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.runtime.KeywardenRuntime;
import io.keywarden.daemon.runtime.Spec;
import java.io.IOException;
import java.util.Optional;
import picocli.CommandLine;
import io.keywarden.daemon.config.Config;
import io.keywarden.daemon.config.ConfigLoader;
import io.keywarden.issuer.IssuerRegistry;
import io.keywarden.policy.Policy;
import io.keywarden.policy.yaml.Problem;
import io.keywarden.policy.yaml.ProblemsException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "run", description = "Run the production daemon.",
        footer = {"%nExamples:", "  keywarden run --config /etc/keywarden/config.yaml",
                "  keywarden run --config /etc/keywarden/config.yaml --takeover   # an upgrade that keeps the live mount"})
final class RunCommand implements Callable<Integer> {

    @Option(names = "--config", required = true, paramLabel = "FILE", description = "The config file (YAML).")
    Path config;

    @CommandLine.Mixin
    UpgradeOptions upgrade = new UpgradeOptions();

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        Config c = loadConfig(config);
        Policy p = PolicyCommand.load(c.policy());
        List<Problem> problems = IssuerRegistry.check(c.issuers(), p);
        if (!problems.isEmpty()) {
            throw new UserError(problems.stream().map(Problem::format).toList());
        }
        Spec s = new Spec("keywarden run", c.node(), p, Optional.of(c.policy()), c.identity(), c.issuers(),
                new Spec.DeliverySpec(c.delivery().mode(), c.delivery().path(), false, Optional.empty(),
                        c.delivery().requestTimeout()),
                new Spec.AuditSpec(Optional.of(c.audit().file()), c.audit().stdout(),
                        new Ledger.Options(KeywardenRuntime.LEDGER_SEGMENT_BYTES, KeywardenRuntime.LEDGER_FSYNC,
                                c.audit().retainBytes(), c.audit().retainAge(), c.audit().group())),
                c.ops().listen(), c.admin().socket(), c.admin().handoverSocket(), c.revokeOnShutdown(), c.tuning(), c.extensions());
        return Serving.serve(s, spec.commandLine().getOut(), upgrade.takeover, upgrade.afterHandover);
    }

    static Config loadConfig(Path file) {
        try {
            return ConfigLoader.load(file);
        } catch (ProblemsException e) {
            List<String> lines = new ArrayList<>();
            e.problems().forEach(pr -> lines.add(pr.format()));
            throw new UserError(lines);
        }
    }
}
