package io.keywarden.daemon.ops;

/** LLM tokens seen, by whoever sees them: the gateway in line, the usage-API sensor by polling. */
public interface TokenMetrics {
    /** Tokens by workload, key, model and direction (in, out); models beyond a bound per workload count as "other". */
    void tokens(String workload, String key, String model, long in, long out);
}
