package io.keywarden.delivery;

/** The state of one (workload, key) as the {@code status} file shows it: typed, not parsed from text. */
public sealed interface LeaseStatus {
    LeaseStatus OK = new Ok(true);

    /** The line of the {@code status} file, without the newline. */
    String line();

    /** A valid key; one that cannot be revoked early at the provider says so. */
    record Ok(boolean revocable) implements LeaseStatus {
        @Override
        public String line() {
            return revocable ? "ok" : "ok (revocable: false)";
        }
    }

    /** The workload is blocked; {@code reason} says by whom ("operator (uid 0): …", "the guard: …", "fleet …"). */
    record Blocked(String reason) implements LeaseStatus {
        @Override
        public String line() {
            return "error: blocked by " + reason;
        }
    }

    /** No valid key: the last issuer error or the expiry. */
    record Failing(String reason) implements LeaseStatus {
        @Override
        public String line() {
            return "error: " + reason;
        }
    }
}
