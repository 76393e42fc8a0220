package io.keywarden.daemon.ops;

/** What the gateway counts: each request and how it ended, and the tokens it relayed. */
public interface GatewayMetrics extends TokenMetrics {
    /**
     * One gateway request and how it ended: {@code ok}, {@code upstream_4xx}/{@code upstream_5xx},
     * or the refusal's code (the same text the caller gets in the answer's {@code error.code}).
     */
    void gatewayRequest(String workload, String key, String outcome);
}
