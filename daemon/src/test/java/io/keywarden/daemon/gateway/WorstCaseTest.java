package io.keywarden.daemon.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

class WorstCaseTest {
    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void theBodyPlusTheLargestOutputLimitTimesTheChoices() throws Exception {
        assertEquals(100 + 20, GatewayServer.worstCase(JSON.readTree("{\"max_tokens\":20}"), 100, 4096));
        assertEquals(100 + 300, GatewayServer.worstCase(JSON.readTree("{\"max_completion_tokens\":300,\"max_tokens\":20}"),
                100, 4096), "the largest of the limits named");
        assertEquals(100 + 50, GatewayServer.worstCase(JSON.readTree("{\"max_output_tokens\":50}"), 100, 4096));
        assertEquals(100 + 4096, GatewayServer.worstCase(JSON.readTree("{\"model\":\"m\"}"), 100, 4096), "the default");
        assertEquals(100 + 4096, GatewayServer.worstCase(JSON.readTree("{\"max_tokens\":-5}"), 100, 4096));
        assertEquals(100 + 3 * 20, GatewayServer.worstCase(JSON.readTree("{\"max_tokens\":20,\"n\":3}"), 100, 4096));
        assertEquals(100 + 4096, GatewayServer.worstCase(null, 100, 4096), "not JSON: the default");
    }
}
