package io.keywarden.daemon.issuer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.jopenlibs.vault.SslConfig;
import io.github.jopenlibs.vault.Vault;
import io.github.jopenlibs.vault.VaultConfig;
import io.github.jopenlibs.vault.VaultException;
import io.github.jopenlibs.vault.response.AuthResponse;
import io.github.jopenlibs.vault.response.LogicalResponse;
import io.keywarden.attestation.IdentityException;
import io.keywarden.attestation.IdentityProvider;
import io.keywarden.attestation.JwtSvid;
import io.keywarden.attestation.ProcessInfo;
import io.keywarden.daemon.config.Config;
import io.keywarden.delivery.IssuedKey;
import io.keywarden.policy.KeySpec;
import io.keywarden.policy.VaultSpec;
import io.keywarden.policy.Workload;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;

/**
 * Vault/OpenBao: the workload's JWT-SVID logs in at {@code auth/<mount>/login} with the policy's
 * role, the token reads the policy's dynamic secret path (the OpenAI engine), and the lease is
 * revoked with that token. One login per lease: a lease dies with its token, so the effective
 * expiry is the earlier of the two and each lease's token is revoked with it. Tokens and JWTs
 * stay in memory and never reach a message.
 */
public final class VaultIssuer implements Issuer {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern SECRETISH = Pattern.compile("(eyJ[A-Za-z0-9_-]{5,}(\\.[A-Za-z0-9_-]*){0,2})|"
            + "((hvs|hvb|s|b)\\.[A-Za-z0-9_-]{16,})|(sk-[A-Za-z0-9_-]{16,})");

    private final Config.Vault config;
    private final IdentityProvider identity;
    private final Clock clock;
    private final SslConfig ssl;
    private final Map<String, String> tokenOfLease = new ConcurrentHashMap<>();

    public VaultIssuer(Config.Vault config, IdentityProvider identity, Clock clock) throws IssuerException {
        this.config = config;
        this.identity = identity;
        this.clock = clock;
        try {
            SslConfig s = new SslConfig();
            if (config.caFile().isPresent()) {
                s = s.pemFile(config.caFile().get().toFile());
            }
            this.ssl = s.build();
        } catch (VaultException e) {
            throw new IssuerException("issuer.vault.caFile cannot be used: " + clean(e.getMessage()), false);
        }
    }

    @Override
    public String name() {
        return "vault";
    }

    private Vault vault(String token) throws VaultException {
        int seconds = (int) Math.max(1, config.timeout().toSeconds());
        VaultConfig c = new VaultConfig().address(config.address().toString().replaceAll("/+$", "")).engineVersion(1)
                .openTimeout(seconds).readTimeout(seconds).sslConfig(ssl);
        if (!config.namespace().isEmpty()) {
            c = c.nameSpace(config.namespace());
        }
        if (token != null) {
            c = c.token(token);
        }
        return Vault.create(c.build()).withRetries(0, 0);
    }

    @Override
    public Lease issue(Workload workload, KeySpec key, ProcessInfo opener) throws IssuerException {
        VaultSpec spec = key.vault().orElseThrow(() -> new IssuerException("key " + key.name()
                + " has no vault block in the policy", false));
        JwtSvid svid;
        try {
            svid = identity.fetchJwtSvid(workload, opener);
        } catch (IdentityException e) {
            throw new IssuerException("no JWT-SVID for " + workload.spiffeId() + ": " + e.getMessage(), e.retryable());
        }
        String role = spec.roleFor(workload.name());
        Instant now = clock.instant();
        AuthResponse login;
        try {
            login = vault(null).auth().loginByJwt(config.authMount(), role, svid.token());
        } catch (VaultException e) {
            throw classify("vault login to auth/" + config.authMount() + " with role " + role, e);
        }
        int loginStatus = login.getRestResponse() == null ? 0 : login.getRestResponse().getStatus();
        if (loginStatus != 200) {
            String body = new String(login.getRestResponse().getBody(), StandardCharsets.UTF_8);
            throw classify("vault login to auth/" + config.authMount() + " with role " + role,
                    new VaultException("Response body: " + body, loginStatus));
        }
        String token = login.getAuthClientToken();
        if (token == null || token.isEmpty()) {
            throw new IssuerException("vault login with role " + role + " returned no client token (a malformed answer)",
                    true);
        }
        String path = spec.pathFor(workload.name());
        String query = spec.ttl().map(t -> "?ttl=" + t.toSeconds() + "s").orElse("");
        LogicalResponse read;
        try {
            read = vault(token).logical().read(path + query);
        } catch (VaultException e) {
            revokeToken(token);
            throw classify("vault read of " + path, e);
        }
        int status = read.getRestResponse() == null ? 0 : read.getRestResponse().getStatus();
        if (status != 200) {
            revokeToken(token);
            String body = new String(read.getRestResponse().getBody(), StandardCharsets.UTF_8);
            throw classify("vault read of " + path, new VaultException("Response body: " + body, status));
        }
        String leaseId = read.getLeaseId();
        Long leaseSeconds = read.getLeaseDuration();
        Map<String, String> data = read.getData();
        String secret = data == null ? null : data.get(spec.field());
        if (secret == null || secret.isEmpty() || leaseId == null || leaseId.isEmpty() || leaseSeconds == null
                || leaseSeconds <= 0) {
            revokeToken(token);
            throw new IssuerException("vault read of " + path + " returned no " + (secret == null || secret.isEmpty()
                    ? "'" + spec.field() + "' field" : "lease") + " (a malformed answer, or not a dynamic secret of the"
                    + " OpenAI engine)", true);
        }
        Instant leaseEnd = now.plusSeconds(leaseSeconds);
        long tokenSeconds = login.getAuthLeaseDuration();
        Instant tokenEnd = tokenSeconds > 0 ? now.plusSeconds(tokenSeconds) : Instant.MAX;
        Instant effective = leaseEnd.isBefore(tokenEnd) ? leaseEnd : tokenEnd;
        byte[] bytes = secret.getBytes(StandardCharsets.UTF_8);
        IssuedKey k = new IssuedKey(bytes, effective, leaseId);
        Arrays.fill(bytes, (byte) 0);
        tokenOfLease.put(leaseId, token);
        return new Lease(k, now, Boolean.TRUE.equals(read.getRenewable()), Optional.ofNullable(data.get("api_key_id")));
    }

    @Override
    public void revoke(Lease lease) throws IssuerException {
        String token = tokenOfLease.get(lease.leaseId());
        if (token == null) {
            throw new IssuerException("no token known for lease " + lease.leaseId(), false);
        }
        try {
            vault(token).leases().revoke(lease.leaseId());
        } catch (VaultException e) {
            // 403: the token is dead, and its leases died with it.
            if (e.getHttpStatusCode() != 403) {
                throw classify("vault revoke of " + lease.leaseId(), e);
            }
        }
        revokeToken(token);
        tokenOfLease.remove(lease.leaseId());
    }

    private void revokeToken(String token) {
        try {
            vault(token).auth().revokeSelf();
        } catch (VaultException e) {
            // the token may have expired already; its leases are gone with it
        }
    }

    /** 4xx are the operator's to fix (not retried soon); 429, 5xx and I/O errors are retried with backoff. */
    static IssuerException classify(String what, VaultException e) {
        int status = e.getHttpStatusCode();
        String detail = errors(e.getMessage());
        boolean retryable = status == 0 || status == 429 || status >= 500;
        String code = status == 0 ? "no HTTP answer" : "HTTP " + status;
        return new IssuerException(what + " failed: " + code + (detail.isEmpty() ? "" : ": " + detail), retryable);
    }

    /** The {@code errors} of a Vault error body, or a cleaned first line; never a token. */
    static String errors(String message) {
        if (message == null) {
            return "";
        }
        int body = message.indexOf('{');
        if (body >= 0) {
            try {
                JsonNode n = JSON.readTree(message.substring(body));
                if (n.has("errors")) {
                    StringBuilder b = new StringBuilder();
                    n.get("errors").forEach(x -> b.append(b.length() == 0 ? "" : "; ").append(x.asText()));
                    return clean(b.toString());
                }
            } catch (java.io.IOException | RuntimeException ignored) {
                return "malformed answer from Vault";
            }
        }
        String first = message.split("\n", 2)[0];
        return clean(first);
    }

    static String clean(String s) {
        String c = SECRETISH.matcher(s == null ? "" : s).replaceAll("[redacted]");
        return c.length() > 300 ? c.substring(0, 300) + "…" : c;
    }
}
