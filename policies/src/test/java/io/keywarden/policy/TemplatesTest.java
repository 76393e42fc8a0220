package io.keywarden.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

class TemplatesTest {
    private static final Workload W = new Workload("reviewer", SpiffeId.parse("spiffe://example.org/reviewer"),
            List.of(), List.of("openai"), Readers.ANY, Map.of("sa", "svc_123", "role", "arn:aws:iam::1:role/x$1"), null);

    @Test
    void expandsTheWorkloadAndItsParams() {
        assertEquals("openai/creds/reviewer", Templates.expand("openai/creds/{workload}", W));
        assertEquals("svc_123:reviewer:svc_123", Templates.expand("{workload.params.sa}:{workload}:{workload.params.sa}", W));
        // A value with regex replacement characters is inserted as is.
        assertEquals("arn:aws:iam::1:role/x$1", Templates.expand("{workload.params.role}", W));
        assertEquals("plain", Templates.expand("plain", W));
    }

    @Test
    void aMissingParamIsAnErrorNotAnEmptyString() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Templates.expand("{workload.params.nope}", W));
        assertEquals("workload reviewer has no params.nope", e.getMessage());
    }

    @Test
    void onlyTheTwoPlaceholdersAreKnown() {
        assertEquals(Optional.empty(), Templates.problem("a/{workload}/{workload.params.x_1}"));
        assertTrue(Templates.problem("{workload.name}").orElseThrow().contains("unknown placeholder '{workload.name}'"));
        assertTrue(Templates.problem("{workload.params.}").isPresent());
        assertTrue(Templates.problem("{workload.params.9}").isPresent());
        assertTrue(Templates.problem("{workload").orElseThrow().contains("unbalanced"));
        assertTrue(Templates.problem("workload}").orElseThrow().contains("unbalanced"));
        assertTrue(Templates.problem("{{workload}}").isPresent());
        assertEquals(Set.of("a", "b"), Templates.paramRefs("{workload.params.a}/{workload}/{workload.params.b}"));
    }

    @Test
    void keyParamsExpandPerWorkload() {
        KeySpec k = new KeySpec("openai", Optional.of("oai"), Map.of("serviceAccount", "{workload.params.sa}"),
                Optional.empty(), 0.67, KeySpec.DEFAULT_GRACE, null);
        assertEquals(Map.of("serviceAccount", "svc_123"), k.paramsFor(W));
    }
}
