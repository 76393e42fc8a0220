package io.keywarden.daemon.ops;

import java.time.Duration;

/** What the fleet's budgets count: each reservation on Redis, its outcome and how long it took. */
public interface FleetMetrics {
    /** How a fleet reservation ended ({@code outcome} label). */
    enum Reservation {
        ADMITTED("admitted"), REFUSED("refused"), UNAVAILABLE("unavailable"), LOCAL("local");

        private final String label;

        Reservation(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    void fleetReservation(Reservation outcome, Duration took);
}
