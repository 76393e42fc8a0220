/**
 * The running daemon: {@link io.keywarden.daemon.runtime.KeywardenRuntime} assembles the
 * components from a {@link io.keywarden.daemon.runtime.Spec} and stops them in reverse order.
 *
 * <p>Thread map (the full table is in docs/ARCHITECTURE.md):
 * <ul>
 *   <li>FUSE workers ({@code fuse-<mount>-N}): decode, attest from /proc and caches, decide, answer
 *       from a valid lease, record. They never wait on SPIRE or an issuer.</li>
 *   <li>{@code keywarden-attest-N}: attestations that must ask SPIRE.</li>
 *   <li>{@code keywarden-issuer-N} (the scheduler's pool): issuer calls, refreshes, retries,
 *       expiry, the sweep, readiness probes, policy polls, the 1 s ledger flush; answers to opens
 *       that waited for a first key. Its threads also wait for the timed tasks and run them (no
 *       separate timer thread).</li>
 *   <li>{@code keywarden-open-timeout-1}: answers opens whose issuance outlived the open timeout.</li>
 *   <li>{@code fuse-notify}: page-cache invalidations.</li>
 *   <li>The Vert.x event loop: the ops endpoints and the admin API's connections; admin requests
 *       run on Vert.x's worker pool. {@code spire-client-1}: gRPC to the SPIRE agent.</li>
 * </ul>
 */
package io.keywarden.daemon.runtime;
