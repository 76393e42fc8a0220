package io.keywarden.daemon.cli;

import io.keywarden.daemon.audit.Ledger;
import io.keywarden.daemon.runtime.KeywardenRuntime;
import io.keywarden.daemon.runtime.Spec;
import java.io.IOException;
import java.time.Duration;
import java.util.Optional;
import picocli.CommandLine;
import io.keywarden.daemon.UserError;
import io.keywarden.daemon.config.Config;
import io.keywarden.daemon.config.ConfigLoader;
import io.keywarden.policy.Policy;
import io.keywarden.policy.yaml.Problem;
import io.keywarden.policy.yaml.ProblemsException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "run", description = "Run the production daemon.")
final class RunCommand implements Callable<Integer> {

    @Option(names = "--config", required = true, paramLabel = "FILE", description = "The config file (YAML).")
    Path config;

    /** Lease TTL of the dev issuer under {@code keywarden run} (the dev issuer has no config block). */
    static final Duration DEV_TTL = Duration.ofMinutes(5);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        Config c = loadConfig(config);
        Policy p = PolicyCommand.load(c.policy());
        if (c.issuer().provider() == Config.IssuerProvider.VAULT) {
            List<Problem> vault = p.problemsForVaultIssuer();
            if (!vault.isEmpty()) {
                throw new UserError(vault.stream().map(Problem::format).toList());
            }
        }
        Spec s = new Spec("keywarden run", c.node(), p, c.identity().provider(), c.identity().audience(),
                c.identity().spireAdminSocket(), c.issuer().provider(), c.issuer().vault(), DEV_TTL, c.delivery().mode(),
                c.delivery().path(), false, c.ops().listen(), Optional.of(c.audit().file()), c.audit().stdout(),
                c.admin().socket(), c.revokeOnShutdown(), Optional.empty(), Optional.of(c.policy()),
                c.delivery().requestTimeout(), new Ledger.Options(KeywardenRuntime.LEDGER_SEGMENT_BYTES,
                KeywardenRuntime.LEDGER_FSYNC, c.audit().retainBytes(), c.audit().retainAge(), c.audit().group()));
        KeywardenRuntime rt;
        try {
            rt = KeywardenRuntime.start(s, spec.commandLine().getOut());
        } catch (IOException e) {
            throw new IllegalStateException(e.getMessage());
        }
        Runtime.getRuntime().addShutdownHook(new Thread(rt::close, "keywarden-shutdown"));
        Signals.onStop(rt::close);
        rt.awaitStop();
        return rt.exitCode();
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
