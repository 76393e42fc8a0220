package io.keywarden.issuer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Issuer types are plug-ins: found through the service file, each in a package of its own that
 * the shared API never reaches into and that no other type reaches into.
 */
class IssuerTypesTest {
    static final Path MAIN = Path.of("src/main/java/io/keywarden/issuer");
    static final Pattern REF = Pattern.compile("io\\.keywarden\\.issuer\\.((?:federation\\.)?[a-z]+)\\.[A-Z]");

    @Test
    void everyTypeIsRegisteredOnceAndNamesItsSpec() {
        List<String> names = IssuerTypes.all().stream().map(IssuerType::type).toList();
        assertEquals(List.of("vault", "dev", "openai-federation", "anthropic-federation", "gcp-sts", "azure-entra",
                "aws-sts", "openrouter-keys", "openrouter-federation", "okta-client-credentials"), names);
        for (IssuerType<?> t : IssuerTypes.all()) {
            assertTrue(IssuerSpec.class.isAssignableFrom(t.specClass()), t.type());
            assertEquals(t.getClass().getPackageName(), t.specClass().getPackageName(),
                    t.type() + ": a type's spec lives in its package");
        }
        assertEquals("vault | dev | openai-federation | anthropic-federation | gcp-sts | azure-entra | aws-sts |"
                + " openrouter-keys | openrouter-federation | okta-client-credentials", IssuerTypes.names());
    }

    @Test
    void defaultUpstreamsAreTheProvidersTheCredentialsAreFor() {
        assertEquals("https://api.openai.com", IssuerTypes.defaultUpstream("vault").orElseThrow().toString());
        assertEquals("https://api.anthropic.com",
                IssuerTypes.defaultUpstream("anthropic-federation").orElseThrow().toString());
        assertEquals("https://openrouter.ai/api", IssuerTypes.defaultUpstream("openrouter-keys").orElseThrow().toString());
        assertTrue(IssuerTypes.defaultUpstream("aws-sts").isEmpty(), "Bedrock's endpoint is regional: the config names it");
        assertTrue(IssuerTypes.defaultUpstream("no-such-type").isEmpty());
    }

    @Test
    void aSpecOfATypeNotOnTheBuildIsRefusedByName() {
        IssuerSpec alien = new IssuerSpec() {
            public String name() {
                return "x";
            }

            public String type() {
                return "carrier-pigeon";
            }

            public Capabilities capabilities() {
                return new Capabilities(false, false, java.util.Optional.empty());
            }

            public List<String> keyProblems(io.keywarden.policy.KeySpec key) {
                return List.of();
            }
        };
        IssuerException e = org.junit.jupiter.api.Assertions.assertThrows(IssuerException.class,
                () -> IssuerTypes.create(alien, new IssuerContext(null, java.time.Clock.systemUTC())));
        assertTrue(e.getMessage().startsWith("issuers.x: no issuer type 'carrier-pigeon'"), e.getMessage());
    }

    /** The package of a main source file under io.keywarden.issuer: "" (the API), "vault", "federation", "federation.aws". */
    static String unitOf(Path f) {
        Path rel = MAIN.relativize(f.getParent() == null ? f : f.getParent());
        return rel.toString().replace('/', '.');
    }

    /** What {@code unit} may not reference: the API and the shared federation code reach no type; a type reaches no other. */
    static List<String> violations(String unit, String source) {
        List<String> out = new ArrayList<>();
        Matcher m = REF.matcher(source);
        while (m.find()) {
            String used = m.group(1);
            if (used.equals(unit) || used.equals("federation") && unit.startsWith("federation.")) {
                continue;
            }
            out.add((unit.isEmpty() ? "(api)" : unit) + " -> " + used);
        }
        return out;
    }

    @Test
    void typesStandAlone() throws IOException {
        List<String> all = new ArrayList<>();
        try (Stream<Path> files = Files.walk(MAIN)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                for (String v : violations(unitOf(f), Files.readString(f))) {
                    all.add(MAIN.relativize(f) + ": " + v);
                }
            }
        }
        assertEquals(List.of(), all.stream().distinct().toList(), "references between issuer packages");
        assertEquals(List.of("federation.aws -> vault"), violations("federation.aws",
                "import io.keywarden.issuer.vault.VaultIssuer;"), "a reference into another type would fail");
        assertEquals(List.of("(api) -> dev"), violations("", "io.keywarden.issuer.dev.DevIssuer x;"));
    }
}
