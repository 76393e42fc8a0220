package io.keywarden.daemon.guard;

import java.time.Duration;

/** The guard's answer before a request is sent upstream. */
public sealed interface Admission {
    Allowed ALLOWED = new Allowed(null);

    /** Admitted; {@code reservation} holds the request's worst case until it settles (null: nothing reserved). */
    record Allowed(Reservation reservation) implements Admission {
    }

    /** The request's model is not in the workload's {@code models}. */
    record ModelRefused(String model, java.util.List<String> allowed) implements Admission {
    }

    /** The budget store could not answer and the fleet is configured to refuse then ({@code onUnavailable: closed}). */
    record Unavailable(String reason) implements Admission {
    }

    /** A budget is used up; {@code retryAfter} is when its window frees again. */
    record OverBudget(BreachKind kind, long observed, long limit, Duration retryAfter) implements Admission {
    }
}
