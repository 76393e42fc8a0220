package io.keywarden.policy;

import io.keywarden.policy.yaml.MappingReader;
import io.keywarden.policy.yaml.Problems;
import io.keywarden.policy.yaml.YamlList;
import io.keywarden.policy.yaml.YamlNode;
import io.keywarden.policy.yaml.YamlScalar;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;

/** Reads a workload's {@code guard:} strictly, reporting every problem with its location. */
final class GuardReader {
    /** Two years of hourly baseline is more than anyone keeps; the state file holds one number per hour. */
    static final int MAX_BASELINE_HOURS = 24 * 366;
    private final Problems problems;

    GuardReader(Problems problems) {
        this.problems = problems;
    }

    Guard read(YamlNode node, String where) {
        Optional<MappingReader> opt = MappingReader.of(node, where, problems);
        if (opt.isEmpty()) {
            return Guard.NONE;
        }
        MappingReader r = opt.get();
        List<String> models = new ArrayList<>();
        r.optional("models").ifPresent(n -> {
            if (!(n instanceof YamlList l)) {
                problems.add(n, where + ".models must be a list of model names or globs, not " + n.describe());
                return;
            }
            for (YamlNode item : l.items()) {
                r.string(item, where + ".models entry").ifPresent(m -> {
                    if (m.isBlank() || m.length() > 200 || m.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
                        problems.add(item, where + ".models entry '" + m + "' must be 1-200 printable characters");
                    } else {
                        models.add(m);
                    }
                });
            }
            if (l.items().isEmpty()) {
                problems.add(n, where + ".models is empty: that would allow no model at all; omit it to allow every model");
            }
        });
        Guard.Budget budget = r.optional("budget").map(n -> budget(n, where + ".budget")).orElse(Guard.Budget.NONE);
        Optional<Guard.Anomaly> anomaly = r.optional("anomaly").flatMap(n -> anomaly(n, where + ".anomaly"));
        Guard.OnBreach onBreach = r.optionalString("onBreach").flatMap(s -> r.parsed(r.map().location(),
                where + ".onBreach", s, Guard.OnBreach::parse)).orElse(Guard.OnBreach.ALERT);
        r.rejectUnknown();
        return new Guard(models, budget, anomaly, onBreach);
    }

    private Guard.Budget budget(YamlNode node, String where) {
        return MappingReader.of(node, where, problems).map(r -> {
            OptionalLong hour = count(r, "tokensPerHour", where);
            OptionalLong day = count(r, "tokensPerDay", where);
            OptionalLong rpm = count(r, "requestsPerMinute", where);
            r.rejectUnknown();
            if (hour.isPresent() && day.isPresent() && day.getAsLong() < hour.getAsLong()) {
                problems.add(node, where + ".tokensPerDay (" + day.getAsLong() + ") is below tokensPerHour ("
                        + hour.getAsLong() + ")");
            }
            return new Guard.Budget(hour, day, rpm);
        }).orElse(Guard.Budget.NONE);
    }

    private Optional<Guard.Anomaly> anomaly(YamlNode node, String where) {
        return MappingReader.of(node, where, problems).flatMap(r -> {
            Optional<Double> factor = r.required("factor").flatMap(n -> {
                if (n instanceof YamlScalar s && (s.kind() == YamlScalar.Kind.FLOAT || s.kind() == YamlScalar.Kind.INTEGER)) {
                    double v = Double.parseDouble(s.text());
                    if (v > 1.0 && v <= 1000.0) {
                        return Optional.of(v);
                    }
                }
                problems.add(n, where + ".factor must be a number above 1 and at most 1000, not " + describe(n));
                return Optional.empty();
            });
            OptionalLong hours = count(r, "baselineHours", where);
            if (hours.isPresent() && hours.getAsLong() > MAX_BASELINE_HOURS) {
                problems.add(r.map(), where + ".baselineHours must be at most " + MAX_BASELINE_HOURS);
            }
            OptionalLong floor = count(r, "minTokensPerHour", where);
            r.rejectUnknown();
            return factor.map(f -> new Guard.Anomaly(f, (int) Math.min(hours.orElse(168), MAX_BASELINE_HOURS),
                    floor.orElse(0)));
        });
    }

    /** A positive whole number, or empty (reported) when it is anything else. */
    private OptionalLong count(MappingReader r, String key, String where) {
        Optional<YamlNode> n = r.optional(key);
        if (n.isEmpty()) {
            return OptionalLong.empty();
        }
        if (n.get() instanceof YamlScalar s && s.kind() == YamlScalar.Kind.INTEGER) {
            try {
                long v = Long.parseLong(s.text());
                if (v > 0) {
                    return OptionalLong.of(v);
                }
            } catch (NumberFormatException e) {
                // reported below
            }
        }
        problems.add(n.get(), where + "." + key + " must be a whole number above 0, not " + describe(n.get()));
        return OptionalLong.empty();
    }

    private static String describe(YamlNode n) {
        return n instanceof YamlScalar s ? "'" + s.text() + "'" : n.describe();
    }
}
