package io.keywarden.daemon.guard;

import java.time.Duration;

/** The guard's answer before a request is sent upstream. */
public sealed interface Admission {
    Allowed ALLOWED = new Allowed();

    record Allowed() implements Admission {
    }

    /** The request's model is not in the workload's {@code models}. */
    record ModelRefused(String model, java.util.List<String> allowed) implements Admission {
    }

    /** A budget is used up; {@code retryAfter} is when its window frees again. */
    record OverBudget(BreachKind kind, long observed, long limit, Duration retryAfter) implements Admission {
    }
}
