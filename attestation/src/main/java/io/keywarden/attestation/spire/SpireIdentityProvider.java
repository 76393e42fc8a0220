package io.keywarden.attestation.spire;

import io.keywarden.attestation.Attestation;
import io.keywarden.attestation.IdentityException;
import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.attestation.ProcAttestor;
import io.keywarden.attestation.ProcessGoneException;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.policy.Policy;
import io.keywarden.policy.SpiffeId;
import io.keywarden.policy.Workload;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * SPIRE decides who a process is: its agent attests the PID (k8s, docker, unix attestors) and
 * returns one JWT-SVID per matching entry; keywarden keeps the one SPIFFE ID its policy knows.
 * A process's identity is cached until it exits (pid + start time); SVIDs are cached per SPIFFE
 * ID until half their life, as the agent does.
 */
public final class SpireIdentityProvider implements IdentityProvider {
    private static final int MAX_PROCESSES = 16_384;

    private record ProcessKey(int pid, long start) {
    }

    private final ProcAttestor proc;
    private final DelegatedIdentityClient client;
    private final Supplier<Policy> policy;
    private final List<String> audience;
    private final Clock clock;
    private final Map<ProcessKey, SpiffeId> identities = new ConcurrentHashMap<>();
    /** Fresh JWT-SVIDs by (SPIFFE ID, audience). */
    private final Map<SvidKey, JwtSvid> svids = new ConcurrentHashMap<>();

    private record SvidKey(SpiffeId id, String audience) {
    }

    public SpireIdentityProvider(ProcAttestor proc, DelegatedIdentityClient client, Supplier<Policy> policy,
                                 String audience, Clock clock) {
        this.proc = proc;
        this.client = client;
        this.policy = policy;
        this.audience = List.of(audience);
        this.clock = clock;
    }

    @Override
    public String name() {
        return "spire";
    }

    @Override
    public Attestation attest(int tid, int uid, int gid) {
        Attestation a = attestNow(tid, uid, gid);
        if (comparesDigest(a)) {
            // Computed here, where waiting is allowed, so that the readers' check after it never hashes.
            a.process().exeSha256();
        }
        return a;
    }

    /** A workload whose readers name executables by digest: the decision after attestation reads it. */
    private static boolean comparesDigest(Attestation a) {
        return a instanceof Attestation.Identified w && !w.workload().readers().sha256s().isEmpty()
                && w.process() != null;
    }

    /** {@code a}, unless the decision after it would hash an executable whose digest is not known yet (empty). */
    private static Optional<Attestation> withoutHashing(Optional<Attestation> a) {
        return a.isPresent() && comparesDigest(a.get()) && !a.get().process().exeSha256Known() ? Optional.empty() : a;
    }

    private Attestation attestNow(int tid, int uid, int gid) {
        ProcessInfo p;
        try {
            p = proc.attest(tid, uid, gid);
        } catch (ProcessGoneException e) {
            return new Attestation.Unidentified(null, e.getMessage());
        }
        if (p.tracerPid() != 0) {
            return new Attestation.Unidentified(p, "being traced by pid " + p.tracerPid() + " (ptrace): refused");
        }
        ProcessKey key = new ProcessKey(p.pid(), p.startTime());
        SpiffeId known = identities.get(key);
        if (known != null) {
            return identified(p, known);
        }
        List<JwtSvid> issued;
        try {
            issued = client.fetchJwtSvids(p.pid(), audience);
        } catch (IdentityException e) {
            return new Attestation.Unidentified(p, e.getMessage());
        }
        if (!proc.isAlive(p)) {
            return new Attestation.Unidentified(p, "process exited or its pid was reused while SPIRE attested it");
        }
        Policy pol = policy.get();
        List<JwtSvid> ours = issued.stream().filter(s -> pol.workloadBySpiffeId(s.spiffeId()).isPresent()).toList();
        if (ours.isEmpty()) {
            return new Attestation.Unidentified(p, issued.isEmpty() ? "SPIRE issued no identity"
                    : "SPIRE identities " + issued.stream().map(s -> s.spiffeId().toString()).toList()
                    + " are not in the policy");
        }
        if (ours.size() > 1) {
            return new Attestation.Unidentified(p, "ambiguous: SPIRE issued several identities the policy knows: "
                    + ours.stream().map(s -> s.spiffeId().toString()).toList());
        }
        JwtSvid svid = ours.get(0);
        svids.put(new SvidKey(svid.spiffeId(), audience.get(0)), svid);
        if (identities.size() >= MAX_PROCESSES) {
            identities.keySet().removeIf(k -> {
                try {
                    return proc.startTime(k.pid()) != k.start();
                } catch (ProcessGoneException e) {
                    return true;
                }
            });
        }
        identities.put(key, svid.spiffeId());
        return identified(p, svid.spiffeId());
    }

    /**
     * SPIRE's answer for one process under one policy, kept on the cached process: a process is
     * named once (the map of named processes only grows by new ones, and loses dead ones), so a
     * repeated open allocates nothing.
     */
    private record Named(Policy policy, Optional<Attestation> answer) {
    }

    /** From /proc and the cache of processes SPIRE already named; empty when SPIRE must be asked. */
    @Override
    public Optional<Attestation> attestWithoutWaiting(int tid, int uid, int gid) {
        ProcessInfo p;
        try {
            p = proc.attest(tid, uid, gid);
        } catch (ProcessGoneException e) {
            return Optional.of(new Attestation.Unidentified(null, e.getMessage()));
        }
        if (p.tracerPid() != 0) {
            return Optional.of(new Attestation.Unidentified(p, "being traced by pid " + p.tracerPid() + " (ptrace): refused"));
        }
        Policy now = policy.get();
        if (p.conclusion() instanceof Named n && n.policy() == now) {
            return withoutHashing(n.answer());
        }
        SpiffeId known = identities.get(new ProcessKey(p.pid(), p.startTime()));
        if (known == null) {
            return Optional.empty();
        }
        Optional<Attestation> answer = Optional.of(identified(p, known));
        p.conclusion(new Named(now, answer));
        return withoutHashing(answer);
    }

    private Attestation identified(ProcessInfo p, SpiffeId id) {
        Optional<Workload> w = policy.get().workloadBySpiffeId(id);
        if (w.isEmpty()) {
            return new Attestation.Unidentified(p, "SPIFFE ID " + id + " is no longer in the policy");
        }
        return new Attestation.Identified(p, w.get(), id);
    }

    /** The agent's admin socket accepts a connection (the Delegated Identity API is there to ask). */
    @Override
    public Optional<String> unavailable() {
        java.nio.file.Path socket = client.socket();
        try (java.nio.channels.SocketChannel c = java.nio.channels.SocketChannel.open(
                java.net.UnixDomainSocketAddress.of(socket))) {
            return Optional.empty();
        } catch (java.io.IOException e) {
            return Optional.of("SPIRE agent admin socket " + socket + " does not answer ("
                    + (e.getMessage() == null ? "I/O error" : e.getMessage()) + ")");
        }
    }

    @Override
    public boolean isAlive(ProcessInfo process) {
        return proc.isAlive(process);
    }

    /**
     * A JWT-SVID not handed out before. The agent caches one SVID per (SPIFFE ID, audiences) until
     * half its life, so asking again for the same audience gives the same SVID: this one adds a
     * second, unique audience ({@code urn:keywarden:once:<uuid>}), which the agent has never cached,
     * so the server signs a new SVID (aud = [audience, that value]). A provider that accepts an
     * assertion once and requires {@code aud} to be exactly one value cannot be served twice within
     * half an SVID's life: with stock SPIRE (no {@code jti}) the question does not arise.
     */
    @Override
    public JwtSvid fetchFreshJwtSvid(Workload workload, ProcessInfo process, String aud) throws IdentityException {
        return fetch(workload, process, List.of(aud, ONCE_AUDIENCE + java.util.UUID.randomUUID()));
    }

    /** The prefix of the unique second audience of {@link #fetchFreshJwtSvid}. */
    public static final String ONCE_AUDIENCE = "urn:keywarden:once:";

    @Override
    public String defaultAudience() {
        return audience.get(0);
    }

    @Override
    public JwtSvid fetchJwtSvid(Workload workload, ProcessInfo process, String aud) throws IdentityException {
        SvidKey k = new SvidKey(workload.spiffeId(), aud);
        JwtSvid cached = svids.get(k);
        if (cached != null && cached.isFreshAt(clock.instant())) {
            return cached;
        }
        JwtSvid s = fetch(workload, process, List.of(aud));
        svids.put(k, s);
        return s;
    }

    private JwtSvid fetch(Workload workload, ProcessInfo process, List<String> aud) throws IdentityException {
        List<JwtSvid> issued;
        if (process != null && proc.isAlive(process)) {
            issued = client.fetchJwtSvids(process.pid(), aud);
        } else if (!workload.selectors().isEmpty()) {
            // No local process (a remote mTLS caller, eager issuance): ask by the workload's
            // selectors as its registration entry states them.
            issued = client.fetchJwtSvidsForSelectors(workload.selectors().stream().map(Object::toString).toList(), aud);
        } else {
            throw new IdentityException("no live process of workload " + workload.name() + " for SPIRE to attest, and"
                    + " no selectors in the policy to ask by", true);
        }
        for (JwtSvid s : issued) {
            if (s.spiffeId().equals(workload.spiffeId())) {
                return s;
            }
        }
        throw new IdentityException("SPIRE issued no JWT-SVID for " + workload.spiffeId() + (process != null
                ? " to pid " + process.pid() : " for the selectors " + workload.selectors()), false);
    }
}
