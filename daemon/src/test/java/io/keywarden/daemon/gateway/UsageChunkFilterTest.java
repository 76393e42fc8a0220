package io.keywarden.daemon.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class UsageChunkFilterTest {
    @Test
    void theUsageOnlyChunkIsDroppedWhereverTheChunksAreCut() {
        String content = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";
        String usage = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n";
        String done = "data: [DONE]\n\n";
        String stream = content + content + usage + done;
        for (int cut = 0; cut <= stream.length(); cut++) {
            UsageChunkFilter f = new UsageChunkFilter();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.writeBytes(f.feed(stream.substring(0, cut).getBytes(StandardCharsets.UTF_8)));
            out.writeBytes(f.feed(stream.substring(cut).getBytes(StandardCharsets.UTF_8)));
            out.writeBytes(f.end());
            assertEquals(content + content + done, out.toString(StandardCharsets.UTF_8), "cut at " + cut);
            assertEquals(1, f.dropped());
        }
    }

    @Test
    void aContentChunkThatAlsoCarriesUsageIsKept() {
        String both = "data: {\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":3}}\r\n\r\n";
        UsageChunkFilter f = new UsageChunkFilter();
        assertEquals(both, new String(f.feed(both.getBytes(StandardCharsets.UTF_8)), StandardCharsets.UTF_8));
        assertEquals(0, f.dropped());
    }
}
