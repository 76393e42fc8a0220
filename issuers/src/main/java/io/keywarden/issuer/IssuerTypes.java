package io.keywarden.issuer;

import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.ServiceLoader;

/**
 * The issuer types on the class path ({@link ServiceLoader} over {@link IssuerType}), by the name
 * the config gives them. Loaded once.
 */
public final class IssuerTypes {
    private static final Map<String, IssuerType<?>> BY_NAME = load();

    private IssuerTypes() {
    }

    private static Map<String, IssuerType<?>> load() {
        Map<String, IssuerType<?>> out = new LinkedHashMap<>();
        for (IssuerType<?> t : ServiceLoader.load(IssuerType.class, IssuerTypes.class.getClassLoader())) {
            IssuerType<?> before = out.putIfAbsent(t.type(), t);
            if (before != null) {
                throw new IllegalStateException("two issuer types are named '" + t.type() + "': "
                        + before.getClass().getName() + " and " + t.getClass().getName());
            }
        }
        return java.util.Collections.unmodifiableMap(out);
    }

    /** The type named {@code type} in the config. */
    public static Optional<IssuerType<?>> named(String type) {
        return Optional.ofNullable(BY_NAME.get(type));
    }

    public static Collection<IssuerType<?>> all() {
        return BY_NAME.values();
    }

    /** The names of every type, as a config error lists them: {@code vault | dev | ...}. */
    public static String names() {
        return String.join(" | ", BY_NAME.keySet());
    }

    /** The issuer of {@code spec}, made by its type. */
    public static Issuer create(IssuerSpec spec, IssuerContext context) throws IssuerException {
        IssuerType<?> t = named(spec.type()).orElseThrow(() -> new IssuerException("issuers." + spec.name()
                + ": no issuer type '" + spec.type() + "' on this build (" + names() + ")", IssuerException.Kind.CONFIG));
        return createAs(t, spec, context);
    }

    private static <S extends IssuerSpec> Issuer createAs(IssuerType<S> t, IssuerSpec spec, IssuerContext context)
            throws IssuerException {
        return t.create(t.specClass().cast(spec), context);
    }

    /** The gateway's upstream for credentials of {@code type} when the config names none. */
    public static Optional<java.net.URI> defaultUpstream(String type) {
        return named(type).flatMap(IssuerType::defaultUpstream);
    }
}
