package io.keywarden.issuer.vault;

import io.keywarden.issuer.Issuer;
import io.keywarden.issuer.IssuerException;
import io.keywarden.issuer.Lease;

import com.fasterxml.jackson.databind.JsonNode;
import io.keywarden.attestation.IdentityException;
import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.attestation.ProcessInfo;


import io.keywarden.delivery.IssuedKey;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.VaultSpec;
import io.keywarden.policy.Workload;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import io.keywarden.linux.Secret;
import java.io.IOException;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Vault/OpenBao: the workload's JWT-SVID logs in at {@code auth/<mount>/login} with the policy's
 * role, the token reads the policy's dynamic secret path (the OpenAI engine), and the lease is
 * revoked with that token at {@code sys/leases/revoke/<lease_id>} (the path form, which a
 * workload policy can grant for its own creds only; setup.sh does). A workload's token is reused
 * while more than half its life remains, then replaced by a new login; once a replaced token holds
 * no lease it is revoked ({@code auth/token/revoke-self}). A lease dies with its token, so a
 * lease's effective expiry is the earlier of the two, and a refresh near the token's end logs in
 * again. Tokens and JWTs stay in memory and never reach a message.
 */
public final class VaultIssuer implements Issuer {
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(VaultIssuer.class);

    private final String name;
    private final String audience;
    private final VaultConnection config;
    private final VaultHttp http;
    private final IdentityProvider identity;
    private final Clock clock;
    private final Map<String, String> tokenOfLease = new ConcurrentHashMap<>();
    private final Map<String, Token> tokenOfRole = new ConcurrentHashMap<>();
    /** How many leases each token holds, and which tokens are a workload's current login: O(1) checks on revoke. */
    private final Map<String, Integer> leasesOfToken = new ConcurrentHashMap<>();
    private final java.util.Set<String> currentTokens = ConcurrentHashMap.newKeySet();

    private record Token(String id, Instant issued, Instant expires) {
        boolean reusableAt(Instant now) {
            return now.isBefore(issued.plus(java.time.Duration.between(issued, expires).dividedBy(2)));
        }
    }

    public VaultIssuer(VaultConnection config, IdentityProvider identity, Clock clock) throws IssuerException {
        this(new VaultType.Spec("vault", config, identity.defaultAudience()), identity, clock);
    }

    public VaultIssuer(VaultType.Spec spec, IdentityProvider identity, Clock clock) throws IssuerException {
        VaultConnection config = spec.connection();
        this.name = spec.name();
        this.audience = spec.audience();
        this.config = config;
        this.http = new VaultHttp(config);
        this.identity = identity;
        this.clock = clock;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public String type() {
        return "vault";
    }

    /**
     * {@code sys/health}: 200 (active), 429 (standby) and 473 (Vault Enterprise performance standby,
     * which serves reads and forwards writes) serve; 472 (a DR secondary: no client requests until
     * promoted), 501 (not initialised), 503 (sealed), 530 (removed from its Raft cluster), any other
     * status, or no answer, do not.
     */
    @Override
    public Optional<String> unavailable() {
        try {
            int status = http.status("sys/health", java.time.Duration.ofSeconds(2));
            return status == 200 || status == 429 || status == 473 ? Optional.empty()
                    : Optional.of("vault at " + config.address() + " answers sys/health with HTTP " + status
                    + switch (status) {
                        case 503 -> " (sealed)";
                        case 501 -> " (not initialised)";
                        case 472 -> " (a disaster-recovery secondary: it serves no client until promoted)";
                        case 530 -> " (removed from its Raft cluster)";
                        default -> "";
                    });
        } catch (IssuerException e) {
            return Optional.of("vault at " + config.address() + ": " + e.getMessage());
        }
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        VaultSpec spec = key.vault().orElseThrow(() -> new IssuerException("key " + key.name()
                + " has no vault block in the policy", IssuerException.Kind.CONFIG));
        String role = spec.roleFor(workload);
        Instant now = clock.instant();
        // Keyed by workload too: a token proves one workload's identity, never another's.
        String tokenKey = workload.name() + "\u0000" + role;
        Token t = tokenOfRole.get(tokenKey);
        if (t == null || !t.reusableAt(now)) {
            Token fresh = login(workload, opener, role, now);
            currentTokens.add(fresh.id());
            Token replaced = tokenOfRole.put(tokenKey, fresh);
            if (replaced != null) {
                currentTokens.remove(replaced.id());
            }
            t = fresh;
            if (replaced != null) {
                revokeIfUnused(replaced.id());
            }
        }
        String token = t.id();
        Instant tokenEnd = t.expires();
        String path = spec.pathFor(workload);
        String query = spec.ttl().map(ttl -> "?ttl=" + ttl.toSeconds() + "s").orElse("");
        byte[] body;
        try {
            body = http.callRaw("vault read of " + path, "GET", path + query, token, null);
        } catch (IssuerException e) {
            // A refused token (revoked or expired early) is dropped: the next attempt logs in again.
            if (tokenOfRole.remove(tokenKey, t)) {
                currentTokens.remove(t.id());
            }
            throw e;
        }
        CredsAnswer read;
        try {
            read = CredsAnswer.parse(body == null ? new byte[0] : body, spec.field());
        } catch (IOException e) {
            throw new IssuerException("vault read of " + path + " returned malformed JSON", IssuerException.Kind.SERVER_ERROR);
        } finally {
            if (body != null) {
                Arrays.fill(body, (byte) 0);
            }
        }
        if (read.secret().isEmpty() || read.leaseId().isEmpty() || read.leaseSeconds() <= 0) {
            read.secret().ifPresent(Secret::close);
            throw new IssuerException("vault read of " + path + " returned no " + (read.secret().isEmpty()
                    ? "'" + spec.field() + "' field" : "lease") + " (a malformed answer, or not a dynamic secret of the"
                    + " OpenAI engine)", IssuerException.Kind.SERVER_ERROR);
        }
        Instant leaseEnd = now.plusSeconds(read.leaseSeconds());
        Instant effective = leaseEnd.isBefore(tokenEnd) ? leaseEnd : tokenEnd;
        // A key the provider kills before its lease ends (a maximum key lifetime) is served only that long.
        if (read.keyExpiresAt().isPresent() && read.keyExpiresAt().get().isBefore(effective)) {
            effective = read.keyExpiresAt().get();
        }
        for (String w : read.warnings()) {
            LOG.warn("vault read of {}: {}", path, w);
        }
        IssuedKey k = new IssuedKey(read.secret().get(), effective, read.leaseId());
        if (tokenOfLease.put(read.leaseId(), token) == null) {
            leasesOfToken.merge(token, 1, Integer::sum);
        }
        Lease lease = new Lease(k, now, read.renewable(), read.apiKeyId());
        return read.keyExpiresAt().map(lease::diesAtProvider).orElse(lease);
    }

    private Token login(Workload workload, ProcessInfo opener, String role, Instant now) throws IssuerException {
        JwtSvid svid;
        try {
            svid = identity.fetchJwtSvid(workload, opener, audience);
        } catch (IdentityException e) {
            throw new IssuerException("no JWT-SVID for " + workload.spiffeId() + ": " + e.getMessage(),
                    IssuerException.Kind.IDENTITY, e.retryable(), 0);
        }
        JsonNode login = http.call("vault login to auth/" + config.authMount() + " with role " + role, "POST",
                "auth/" + config.authMount() + "/login", null, Map.of("role", role, "jwt", svid.token()));
        String token = login == null ? "" : login.path("auth").path("client_token").asText("");
        if (token.isEmpty()) {
            throw new IssuerException("vault login with role " + role + " returned no client token (a malformed answer)",
                    IssuerException.Kind.SERVER_ERROR);
        }
        long tokenSeconds = login.path("auth").path("lease_duration").asLong(0);
        return new Token(token, now, tokenSeconds > 0 ? now.plusSeconds(tokenSeconds) : Instant.MAX);
    }

    @Override
    public void revoke(Lease lease) throws IssuerException {
        String token = tokenOfLease.get(lease.leaseId());
        if (token == null) {
            throw new IssuerException("no token known for lease " + lease.leaseId(), IssuerException.Kind.CONFIG);
        }
        try {
            http.call("vault revoke of " + lease.leaseId(), "PUT", "sys/leases/revoke/" + lease.leaseId(), token, null);
        } catch (IssuerException e) {
            if (e.httpStatus() != 403) {
                throw e;
            }
            // 403: either the token is dead (and its leases died with it), or its policy does not
            // allow revoking this lease. Only the first is a revocation.
            try {
                http.call("vault token lookup", "GET", "auth/token/lookup-self", token, null);
            } catch (IssuerException dead) {
                if (dead.httpStatus() == 403) {
                    forget(lease.leaseId(), token);
                    return;
                }
                throw dead;
            }
            throw new IssuerException("vault refused to revoke " + lease.leaseId() + " (HTTP 403): the workload's"
                    + " policy must allow update on sys/leases/revoke/" + lease.leaseId().replaceAll("/[^/]*$", "/*")
                    + " (deploy/openbao/setup.sh writes it)", IssuerException.Kind.REFUSED, 403);
        }
        forget(lease.leaseId(), token);
    }

    /**
     * A lease of a killed run: log in as its workload (a fresh JWT-SVID; with SPIRE this needs a
     * process of the workload, so without one it fails with the reason), revoke the lease with that
     * token, then the token itself.
     */
    @Override
    public boolean revokeOrphan(Workload workload, KeySpec key, String leaseId) throws IssuerException {
        VaultSpec spec = key.vault().orElseThrow(() -> new IssuerException("key " + key.name()
                + " has no vault block in the policy", IssuerException.Kind.CONFIG));
        Token t = login(workload, null, spec.roleFor(workload), clock.instant());
        try {
            http.call("vault revoke of " + leaseId, "PUT", "sys/leases/revoke/" + leaseId, t.id(), null);
        } finally {
            try {
                http.call("vault token revoke-self", "POST", "auth/token/revoke-self", t.id(), null);
            } catch (IssuerException e) {
                LOG.debug("vault token revoke-self after an orphan's revoke: {}", e.getMessage());
            }
        }
        return true;
    }

    /** The tokens: of each lease, each role's login, how many leases each holds, the current logins. */
    @Override
    public byte[] handoverState() {
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        com.fasterxml.jackson.databind.node.ObjectNode root = json.createObjectNode();
        tokenOfLease.forEach(root.putObject("tokenOfLease")::put);
        com.fasterxml.jackson.databind.node.ObjectNode roles = root.putObject("tokenOfRole");
        tokenOfRole.forEach((role, t) -> roles.putObject(role).put("id", t.id()).put("issued", t.issued().toString())
                .put("expires", t.expires().toString()));
        leasesOfToken.forEach(root.putObject("leasesOfToken")::put);
        currentTokens.forEach(root.putArray("currentTokens")::add);
        try {
            return json.writeValueAsBytes(root);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException("vault issuer state: " + e.getOriginalMessage());
        }
    }

    @Override
    public void adoptHandoverState(byte[] state) throws IssuerException {
        if (state.length == 0) {
            return;
        }
        try {
            com.fasterxml.jackson.databind.JsonNode root = new com.fasterxml.jackson.databind.ObjectMapper().readTree(state);
            root.path("tokenOfLease").fields().forEachRemaining(e -> tokenOfLease.put(e.getKey(), e.getValue().asText()));
            root.path("tokenOfRole").fields().forEachRemaining(e -> tokenOfRole.put(e.getKey(), new Token(
                    e.getValue().path("id").asText(), Instant.parse(e.getValue().path("issued").asText()),
                    Instant.parse(e.getValue().path("expires").asText()))));
            root.path("leasesOfToken").fields().forEachRemaining(e -> leasesOfToken.put(e.getKey(), e.getValue().asInt()));
            root.path("currentTokens").forEach(t -> currentTokens.add(t.asText()));
        } catch (java.io.IOException | RuntimeException e) {
            throw new IssuerException("the handed-over state of issuer " + name + " is malformed",
                    IssuerException.Kind.CONFIG);
        }
    }

    private void forget(String leaseId, String token) {
        if (tokenOfLease.remove(leaseId, token)) {
            leasesOfToken.computeIfPresent(token, (k, n) -> n <= 1 ? null : n - 1);
        }
        revokeIfUnused(token);
    }

    /** Revokes a token that holds no lease and is no longer a workload's current login. */
    private void revokeIfUnused(String token) {
        if (leasesOfToken.containsKey(token) || currentTokens.contains(token)) {
            return;
        }
        try {
            http.call("vault token revoke-self", "PUT", "auth/token/revoke-self", token, null);
        } catch (IssuerException e) {
            if (e.httpStatus() != 403) {
                LOG.warn("{}", e.getMessage());
            }
        }
    }

}
