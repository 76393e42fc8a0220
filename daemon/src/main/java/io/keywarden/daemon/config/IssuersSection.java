package io.keywarden.daemon.config;

import io.keywarden.issuer.IssuerBlock;
import io.keywarden.issuer.IssuerSpec;
import io.keywarden.issuer.IssuerType;
import io.keywarden.issuer.IssuerTypes;
import io.keywarden.issuer.dev.DevType;
import io.keywarden.issuer.vault.VaultConnection;
import io.keywarden.issuer.vault.VaultType;
import io.keywarden.policy.Names;
import io.keywarden.policy.yaml.Location;
import io.keywarden.policy.yaml.MappingReader;
import io.keywarden.policy.yaml.YamlNode;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;

/**
 * The config's {@code issuers:} (and the older single {@code issuer:}): each instance's
 * {@code type} names its {@link IssuerType}, which reads the rest of the block itself through an
 * {@link IssuerBlock} over the loader's problems and helpers.
 */
final class IssuersSection extends ConfigSection {
    IssuersSection(ConfigLoader loader) {
        super(loader);
    }

    /** The older single-issuer form: one instance named after its provider ({@code vault} or {@code dev}). */
    IssuerSpec issuer(YamlNode n, String audience) {
        return loader.section(n, "issuer", r -> {
            Optional<YamlNode> providerNode = r.optional("provider");
            Optional<String> provider = providerNode.flatMap(pn -> r.string(pn, "issuer.provider"));
            Optional<YamlNode> vaultNode = r.optional("vault");
            if (provider.isEmpty()) {
                if (loader.problems.isEmpty()) {
                    loader.problems.add(r.map(), "issuer: missing required key 'provider' (vault | dev)");
                }
                return null;
            }
            switch (provider.get()) {
                case "vault" -> {
                    if (vaultNode.isEmpty()) {
                        loader.problems.add(r.map(), "issuer.vault is required when issuer.provider is vault");
                        return null;
                    }
                    VaultConnection v = loader.section(vaultNode.get(), "issuer.vault",
                            vr -> VaultType.connection(new Block("vault", "issuer.vault", vr, audience)));
                    return v == null ? null : new VaultType.Spec("vault", v, audience);
                }
                case "dev" -> {
                    vaultNode.ifPresent(v -> loader.section(v, "issuer.vault",
                            vr -> VaultType.connection(new Block("vault", "issuer.vault", vr, audience))));
                    return new DevType.Spec("dev", DevType.Spec.DEFAULT_TTL);
                }
                default -> {
                    loader.problems.add(providerNode.get(), "issuer.provider: '" + provider.get() + "' is not one of vault | dev");
                    return null;
                }
            }
        });
    }

    /** {@code issuers:}: named instances, each with its {@code type} and that type's settings. */
    void issuers(YamlNode n, String audience, Map<String, IssuerSpec> out) {
        MappingReader.of(n, "issuers", loader.problems).ifPresent(r -> {
            if (r.map().entries().isEmpty()) {
                loader.problems.add(n, "issuers must name at least one issuer instance");
            }
            for (var e : r.map().entries()) {
                r.optional(e.key());
                String where = "issuers." + e.key();
                if (!Names.isValid(e.key())) {
                    loader.problems.add(e.keyLocation(), where + ": '" + e.key() + "' is not a valid instance name: use 1-63"
                            + " of a-z, 0-9, '_' or '-', starting with a letter or digit");
                    continue;
                }
                IssuerSpec spec = loader.section(e.value(), where, ir -> {
                    Optional<String> type = ir.requiredString("type");
                    if (type.isEmpty()) {
                        return null;
                    }
                    Optional<IssuerType<?>> t = IssuerTypes.named(type.get());
                    if (t.isEmpty()) {
                        loader.problems.add(ir.map(), where + ".type: '" + type.get() + "' is not a known issuer type ("
                                + IssuerTypes.names() + ")");
                        return null;
                    }
                    return t.get().parse(new Block(e.key(), where, ir, audience));
                });
                if (spec != null) {
                    out.put(e.key(), spec);
                }
            }
            r.rejectUnknown();
        });
    }

    /** One instance's block, read with the loader's problems and helpers. */
    private final class Block implements IssuerBlock {
        private final String name;
        private final String where;
        private final MappingReader reader;
        private final String audience;

        Block(String name, String where, MappingReader reader, String audience) {
            this.name = name;
            this.where = where;
            this.reader = reader;
            this.audience = audience;
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public String where() {
            return where;
        }

        @Override
        public MappingReader reader() {
            return reader;
        }

        @Override
        public String defaultAudience() {
            return audience;
        }

        @Override
        public void problem(String message) {
            loader.problems.add(reader.map(), message);
        }

        @Override
        public void problem(Location at, String message) {
            loader.problems.add(at, message);
        }

        @Override
        public URI url(String key, String dflt) {
            return loader.url(reader, where, key, dflt);
        }

        @Override
        public Optional<URI> requiredUrl(String key) {
            return reader.required(key).flatMap(a -> reader.string(a, where + "." + key).flatMap(x -> reader.parsed(
                    a.location(), where + "." + key, x, ConfigLoader::httpUri)));
        }

        @Override
        public String nonEmpty(String key, String dflt) {
            return loader.nonEmpty(reader, where, key, dflt);
        }

        @Override
        public Duration timeout() {
            return loader.timeout(reader, where);
        }

        @Override
        public Path path(String text) {
            return loader.path(text);
        }

        @Override
        public boolean readable(Location at, String what, Path p) {
            return loader.readable(at, what, p);
        }
    }
}
