package io.keywarden.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.keywarden.policy.yaml.Problem;
import io.keywarden.policy.yaml.ProblemsException;
import java.util.List;
import org.junit.jupiter.api.Test;

class GuardTest {
    private static String policy(String guard) {
        return """
                keys:
                  openai: {}
                workloads:
                  - name: reviewer
                    spiffeId: spiffe://example.org/reviewer
                    selectors: [unix:uid:1001]
                    keys: [openai]
                """ + guard.indent(4);
    }

    @Test
    void readsEveryField() throws Exception {
        Policy p = PolicyLoader.parse(policy("""
                guard:
                  models: ["gpt-4.1-mini", "claude-sonnet-*"]
                  budget: {tokensPerHour: 200000, tokensPerDay: 1000000, requestsPerMinute: 60}
                  anomaly: {factor: 1.5, baselineHours: 168, minTokensPerHour: 10000}
                  onBreach: block
                """), "p.yaml");
        Guard g = p.workload("reviewer").orElseThrow().guard();
        assertEquals(List.of("gpt-4.1-mini", "claude-sonnet-*"), g.models());
        assertEquals(200_000, g.budget().tokensPerHour().getAsLong());
        assertEquals(1_000_000, g.budget().tokensPerDay().getAsLong());
        assertEquals(60, g.budget().requestsPerMinute().getAsLong());
        assertEquals(new Guard.Anomaly(1.5, 168, 10_000), g.anomaly().orElseThrow());
        assertEquals(Guard.OnBreach.BLOCK, g.onBreach());
    }

    @Test
    void noGuardAllowsEveryModelWithoutLimits() throws Exception {
        Guard g = PolicyLoader.parse(policy(""), "p.yaml").workload("reviewer").orElseThrow().guard();
        assertEquals(Guard.NONE, g);
        assertTrue(g.allowsModel("anything"));
        assertTrue(g.allowsModel(null));
    }

    @Test
    void globsMatchWholeNamesOnly() {
        Guard g = new Guard(List.of("gpt-4.1-mini", "claude-sonnet-*", "*-embed"), Guard.Budget.NONE,
                java.util.Optional.empty(), Guard.OnBreach.ALERT);
        assertTrue(g.allowsModel("gpt-4.1-mini"));
        assertFalse(g.allowsModel("gpt-4.1-mini-2025"), "no implicit suffix");
        assertFalse(g.allowsModel("xgpt-4.1-mini"), "no implicit prefix");
        assertTrue(g.allowsModel("claude-sonnet-4-5"));
        assertFalse(g.allowsModel("claude-opus-4"));
        assertTrue(g.allowsModel("text-embed"));
        assertFalse(g.allowsModel("gpt.4.1-mini"), "a dot is literal");
        assertFalse(g.allowsModel(null), "a request without a model is refused when models are restricted");
    }

    @Test
    void everyMistakeIsReportedWithItsLine() {
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.parse(policy("""
                guard:
                  models: []
                  budget: {tokensPerHour: -5, tokensPerDay: 10, requestsPerMinute: 1.5, perWeek: 3}
                  anomaly: {factor: 0.5}
                  onBreach: explode
                  colour: red
                """), "p.yaml"));
        List<String> lines = e.problems().stream().map(Problem::format).toList();
        String all = String.join("\n", lines);
        assertTrue(all.contains("p.yaml:9:") && all.contains("guard.models is empty"), all);
        assertTrue(all.contains("guard.budget.tokensPerHour must be a whole number above 0, not '-5'"), all);
        assertTrue(all.contains("guard.budget.requestsPerMinute must be a whole number above 0, not '1.5'"), all);
        assertTrue(all.contains("unknown key 'perWeek'"), all);
        assertTrue(all.contains("guard.anomaly.factor must be a number above 1"), all);
        assertTrue(all.contains("guard.onBreach: must be alert, revoke or block, not 'explode'"), all);
        assertTrue(all.contains("unknown key 'colour'"), all);
    }

    @Test
    void aDailyBudgetBelowTheHourlyOneIsAMistake() {
        ProblemsException e = assertThrows(ProblemsException.class, () -> PolicyLoader.parse(policy("""
                guard:
                  budget: {tokensPerHour: 1000, tokensPerDay: 10}
                """), "p.yaml"));
        assertTrue(e.problems().get(0).format().contains("tokensPerDay (10) is below tokensPerHour (1000)"),
                e.problems().toString());
    }
}
