package io.keywarden.daemon.cli;

import io.keywarden.daemon.NotYetAvailable;
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

    @Override
    public Integer call() {
        Config c = loadConfig(config);
        Policy p = PolicyCommand.load(c.policy());
        if (c.issuer().provider() == Config.IssuerProvider.VAULT) {
            List<Problem> vault = p.problemsForVaultIssuer();
            if (!vault.isEmpty()) {
                throw new UserError(vault.stream().map(Problem::format).toList());
            }
        }
        throw new NotYetAvailable("the production daemon (config and policy are valid)");
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
