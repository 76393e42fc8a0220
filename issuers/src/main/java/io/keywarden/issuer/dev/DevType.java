package io.keywarden.issuer.dev;

import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerBlock;
import io.keywarden.issuer.IssuerContext;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerType;
import io.keywarden.policy.Durations;
import io.keywarden.policy.KeySpec;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Optional;

/** {@code type: dev}: {@code sk-dev-} keys with a fixed {@code ttl} (10s..24h), nothing external. */
public final class DevType implements IssuerType<DevType.Spec> {

    /**
     * The dev issuer: it stands in for any type under {@code keywarden dev}, so it accepts (and
     * ignores) every key's parameters.
     */
    public record Spec(String name, Duration ttl) implements IssuerSpec {
        public static final Duration DEFAULT_TTL = Duration.ofMinutes(5);

        @Override
        public String type() {
            return "dev";
        }

        @Override
        public Capabilities capabilities() {
            return new Capabilities(true, false, Optional.empty());
        }

        @Override
        public List<String> keyProblems(KeySpec key) {
            return List.of();
        }
    }

    @Override
    public String type() {
        return "dev";
    }

    @Override
    public Class<Spec> specClass() {
        return Spec.class;
    }

    @Override
    public Spec parse(IssuerBlock b) {
        Duration ttl = b.reader().optionalParsed("ttl", Durations::parse).orElse(Spec.DEFAULT_TTL);
        if (ttl.compareTo(Duration.ofSeconds(10)) < 0 || ttl.compareTo(Duration.ofDays(1)) > 0) {
            b.problem(b.where() + ".ttl must be between 10s and 24h");
        }
        return new Spec(b.name(), ttl);
    }

    @Override
    public Issuer create(Spec spec, IssuerContext context) {
        return new DevIssuer(spec.name(), spec.ttl(), context.clock());
    }

    /** Dev keys look like OpenAI's: the dev gateway forwards them there unless the config says otherwise. */
    @Override
    public Optional<URI> defaultUpstream() {
        return Optional.of(URI.create("https://api.openai.com"));
    }
}
