/**
 * The spend and model guard: one {@link io.keywarden.daemon.guard.GuardEngine} fed by two sensors —
 * the gateway (usage read from each response, in line) and the usage-API poller (file mode, late by
 * the provider's reporting lag) — that enforces each workload's {@code guard:} (models, budgets,
 * anomaly rule) and acts on a breach (alert, revoke, block).
 */
package io.keywarden.daemon.guard;
