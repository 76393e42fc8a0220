package io.keywarden.daemon.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class WorstCaseTest {
    static RequestFacts facts(String json) throws Exception {
        byte[] b = json.getBytes(StandardCharsets.UTF_8);
        return RequestFacts.read(b, 0, b.length);
    }

    @Test
    void theBodyPlusTheLargestOutputLimitTimesTheChoices() throws Exception {
        assertEquals(100 + 20, GatewayServer.worstCase(facts("{\"max_tokens\":20}"), 100, 4096));
        assertEquals(100 + 300, GatewayServer.worstCase(facts("{\"max_completion_tokens\":300,\"max_tokens\":20}"),
                100, 4096), "the largest of the limits named");
        assertEquals(100 + 50, GatewayServer.worstCase(facts("{\"max_output_tokens\":50}"), 100, 4096));
        assertEquals(100 + 4096, GatewayServer.worstCase(facts("{\"model\":\"m\"}"), 100, 4096), "the default");
        assertEquals(100 + 4096, GatewayServer.worstCase(facts("{\"max_tokens\":-5}"), 100, 4096));
        assertEquals(100 + 3 * 20, GatewayServer.worstCase(facts("{\"max_tokens\":20,\"n\":3}"), 100, 4096));
        assertEquals(100 + 4096, GatewayServer.worstCase(null, 100, 4096), "not JSON: the default");
    }
}
