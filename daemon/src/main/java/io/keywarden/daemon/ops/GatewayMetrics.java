package io.keywarden.daemon.ops;

/** What the gateway counts: each request and how it ended, and the tokens it relayed. */
public interface GatewayMetrics extends TokenMetrics {
    /**
     * How a gateway request ended ({@code outcome} label): relayed ({@code ok}, or the upstream's
     * {@code upstream_4xx}/{@code upstream_5xx}), or refused — a refusal's label is also the
     * {@code error.code} the caller gets.
     */
    enum Outcome {
        OK, UPSTREAM_4XX, UPSTREAM_5XX, BAD_REQUEST, NO_SUCH_KEY, NO_UPSTREAM, REQUEST_TOO_LARGE, GATEWAY_BUSY,
        NOT_PERMITTED, CREDENTIAL_UNAVAILABLE, MODEL_NOT_ALLOWED, FLEET_UNAVAILABLE, BUDGET_EXCEEDED,
        UPSTREAM_UNREACHABLE, CONNECTION_LIMIT, INTERNAL_ERROR;

        private final String label = name().toLowerCase(java.util.Locale.ROOT);

        public String label() {
            return label;
        }

        /** The outcome of a request the upstream answered with {@code status}. */
        public static Outcome relayed(int status) {
            return status < 400 ? OK : status < 500 ? UPSTREAM_4XX : UPSTREAM_5XX;
        }
    }

    /** One gateway request and how it ended. */
    void gatewayRequest(String workload, String key, Outcome outcome);
}
